"""Tiny Audio2Lmk components (the oracle's sizes) shared by the audio tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig

TINY_W2V = dict(  # = ../shared/reference/oracle/w2v_tiny_config.json
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=[16] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False,
    feat_extract_norm="group",
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
)


def _tiny_w2v() -> Wav2Vec2Config:
    return Wav2Vec2Config(**TINY_W2V)


@pytest.fixture
def tiny_w2v_config() -> Wav2Vec2Config:
    """The oracle's tiny wav2vec2 configuration (hidden 32, 2 layers, conv 7×16)."""
    return _tiny_w2v()


@pytest.fixture
def tiny_mesh() -> Audio2Mesh:
    torch.manual_seed(0)
    model = Audio2Mesh(Audio2MeshConfig(latent_dim=32, encoder=_tiny_w2v()), random_encoder_ok=True)
    torch.nn.init.normal_(model.out_fn.weight, std=0.05)  # the official zero init would hide bugs
    return model.eval()


@pytest.fixture
def tiny_pose() -> Audio2Pose:
    """Two decoder layers instead of eight keep autoregressive tests fast; the oracle tests use eight."""
    torch.manual_seed(1)
    config = Audio2PoseConfig(latent_dim=32, num_layers=2, encoder=_tiny_w2v())
    return Audio2Pose(config, random_encoder_ok=True).eval()


@pytest.fixture
def speech_like():
    """Deterministic 16 kHz test signal: an amplitude-modulated chirp plus noise, (N,) float32."""

    def make(seconds: float, seed: int = 0) -> np.ndarray:
        t = np.arange(int(seconds * 16000)) / 16000
        rng = np.random.default_rng(seed)
        tone = np.sin(2 * np.pi * (150 + 40 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        return (0.3 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)

    return make
