"""Tiny Audio2Lmk components (the oracle's sizes) shared by the audio tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig


@pytest.fixture
def tiny_w2v_config(make_wav2vec2_config) -> Wav2Vec2Config:
    """The oracle's tiny wav2vec2 configuration (hidden 32, 2 layers, conv 7×16; tests/conftest.py)."""
    return make_wav2vec2_config()


@pytest.fixture
def tiny_mesh(make_wav2vec2_config) -> Audio2Mesh:
    torch.manual_seed(0)
    config = Audio2MeshConfig(latent_dim=32, encoder=make_wav2vec2_config())
    model = Audio2Mesh(config, random_encoder_ok=True)
    torch.nn.init.normal_(model.out_fn.weight, std=0.05)  # the official zero init would hide bugs
    return model.eval()


@pytest.fixture
def tiny_pose(make_wav2vec2_config) -> Audio2Pose:
    """Two decoder layers instead of eight keep autoregressive tests fast; the oracle tests use eight."""
    torch.manual_seed(1)
    config = Audio2PoseConfig(latent_dim=32, num_layers=2, encoder=make_wav2vec2_config())
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
