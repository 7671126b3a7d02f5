"""Audio2Mesh: speech → per-frame 3D face-mesh offsets (paper §3.1, spec §2.2).

    input_values (B, N) ─ wav2vec2 (time-aligned) ─> (B, T, 768) ─ in_fn ─> (B, T, 512)
        ─ out_fn ─> (B, T, 1404) = (B, T, 468, 3) offsets

No activation between ``in_fn`` and ``out_fn`` (as in the official model), so the head is one
affine map written as two. ``out_fn`` starts at zero: an untrained model predicts "no motion".
The offsets are added to the reference image's canonical mesh ``lmks3d`` (468, 3).

Parameter names equal the official ``Audio2MeshModel`` (``audio_encoder.*``, ``in_fn.*``,
``out_fn.*``), so official checkpoints load after the one weight-norm rename done in
``aniportrait_lib.weights.audio_checkpoints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import Wav2Vec2Config

from .encoder import TimeAlignedWav2Vec2, build_audio_encoder, wav2vec2_base_960h_config


@dataclass
class Audio2MeshConfig:
    """Audio2Mesh sizes; defaults are the released model (configs/inference/inference_audio.yaml)."""

    latent_dim: int = 512  # inference_audio.yaml a2m_model.latent_dim
    out_dim: int = 1404  # inference_audio.yaml a2m_model.out_dim = 468 vertices × 3 (spec §2.2)
    only_last_features: bool = (
        True  # inference_audio.yaml "only_last_fetures" (mean of hidden states if False)
    )
    encoder: Wav2Vec2Config = field(default_factory=wav2vec2_base_960h_config)  # spec §2.1


class Audio2Mesh(nn.Module):
    """wav2vec2 + linear head predicting canonical-mesh offsets.

    Args:
        config: sizes (see :class:`Audio2MeshConfig`).
        wav2vec2_dir: local ``wav2vec2-base-960h`` folder to initialise the encoder from
            (official ``from_pretrained: True``); None → random encoder, with a warning.
        random_encoder_ok: set True to build a random encoder silently (tests, meta-device builds,
            or when a checkpoint will provide the encoder weights).
    """

    def __init__(
        self,
        config: Audio2MeshConfig | None = None,
        wav2vec2_dir: str | Path | None = None,
        random_encoder_ok: bool = False,
    ):
        super().__init__()
        self.config = config or Audio2MeshConfig()
        if wav2vec2_dir is None and random_encoder_ok:
            self.audio_encoder = TimeAlignedWav2Vec2(self.config.encoder)
        else:
            self.audio_encoder = build_audio_encoder(self.config.encoder, wav2vec2_dir)
        hidden = self.config.encoder.hidden_size
        self.in_fn = nn.Linear(hidden, self.config.latent_dim)  # (768 → 512)
        self.out_fn = nn.Linear(self.config.latent_dim, self.config.out_dim)  # (512 → 1404)
        nn.init.zeros_(self.out_fn.weight)
        nn.init.zeros_(self.out_fn.bias)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden_size) audio features → (B, T, out_dim) mesh offsets."""
        return self.out_fn(self.in_fn(hidden))

    def forward(self, input_values: torch.Tensor, seq_len: int) -> torch.Tensor:
        """(B, N) normalised 16 kHz audio → (B, seq_len, out_dim) offsets (flattened 468×3)."""
        mean_hidden = not self.config.only_last_features
        return self.head(self.audio_encoder.encode(input_values, seq_len, mean_hidden))

    @torch.no_grad()
    def infer(self, input_values: torch.Tensor, seq_len: int) -> torch.Tensor:
        """The official ``infer``: same as :meth:`forward` without gradients (call ``.eval()`` first)."""
        return self(input_values, seq_len)

    @torch.no_grad()
    def infer_long(self, input_values: torch.Tensor, seq_len: int, **window_kwargs) -> torch.Tensor:
        """:meth:`infer` for any length via ``TimeAlignedWav2Vec2.encode_long`` (bounded memory).

        ``window_kwargs`` go to ``encode_long`` (window_frames, overlap_frames, chunk_frames).
        """
        mean_hidden = not self.config.only_last_features
        hidden = self.audio_encoder.encode_long(input_values, seq_len, mean_hidden, **window_kwargs)
        return self.head(hidden)
