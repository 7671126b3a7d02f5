"""The wav2vec2 audio encoder of Audio2Mesh / Audio2Pose, time-aligned to 30 fps video (spec §2.1).

The official code replaces ``Wav2Vec2Model.forward`` by one taking a target length ``seq_len``:

    input_values (B, N) ─ conv feature encoder ─> (B, T≈N/320, 512)      # ~50 Hz
        ─ F.interpolate(linear, align_corners=True) ─> (B, seq_len, 512)   # exactly 30 fps
        ─ feature_projection (LayerNorm, Linear 512→768) ─> (B, seq_len, 768)
        ─ (SpecAugment masking, training only)
        ─ transformer encoder (pos-conv embedding + LayerNorm + 12 layers) ─> (B, seq_len, 768)

Here :class:`TimeAlignedWav2Vec2` is transformers' ``Wav2Vec2Model`` plus methods for these steps;
its parameters, and so its ``state_dict`` keys, are exactly those of ``Wav2Vec2Model``.

Long audio (``encode_long``) in bounded memory:

1. the conv features are computed in chunks **exactly**: every conv is "valid" with a total stride
   of 320 samples and a receptive field of 400, so output frames ``[a, b)`` only need samples
   ``[320a, 320(b-1)+400)``. The first layer's GroupNorm normalises each channel over the whole
   clip, so a first pass accumulates its per-channel mean / variance and the second pass applies them;
2. the interpolation to ``seq_len`` and the projection are per frame (exact, O(seq_len·768) memory);
3. the transformer attends globally, which cannot be windowed exactly: it runs on overlapping
   windows of ``window_frames`` (default 50 s) whose outputs are cross-faded over ``overlap_frames``
   (``windows.py``). When the clip fits in one window the result equals :meth:`encode`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the kit never downloads; must precede the import below

from transformers import Wav2Vec2Config, Wav2Vec2Model  # noqa: E402

from aniportrait_lib.paths import weights_dir  # noqa: E402
from aniportrait_lib.pretrained_errors import UNREADABLE_PRETRAINED, unreadable_pretrained

from .windows import overlap_add, window_spans  # noqa: E402

logger = logging.getLogger(__name__)

WAV2VEC2_FOLDER_NAME = "wav2vec2-base-960h"
"""Folder name of the encoder weights in the official ``pretrained_model/`` layout."""


def wav2vec2_base_960h_config() -> Wav2Vec2Config:
    """The facebook/wav2vec2-base-960h architecture (spec §2.1; published config.json values)."""
    return Wav2Vec2Config(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        conv_dim=[512] * 7,
        conv_kernel=[10, 3, 3, 3, 3, 2, 2],
        conv_stride=[5, 2, 2, 2, 2, 2, 2],
        conv_bias=False,
        feat_extract_norm="group",
        feat_extract_activation="gelu",
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        do_stable_layer_norm=False,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        hidden_dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.1,
        feat_proj_dropout=0.1,
        final_dropout=0.1,
        layerdrop=0.1,
        apply_spec_augment=True,
        mask_time_prob=0.05,
        mask_time_length=10,
        mask_feature_prob=0.0,
        vocab_size=32,
    )


class TimeAlignedWav2Vec2(Wav2Vec2Model):
    """``Wav2Vec2Model`` whose output is resampled to a requested number of video frames.

    Same parameters as ``Wav2Vec2Model``; the conv feature encoder is frozen at construction, as
    the official models do (``feature_extractor._freeze_parameters()``).
    """

    # wav2vec2-base-960h is saved as Wav2Vec2ForCTC: its CTC head (lm_head) is expected to be left unused,
    # so transformers' load report stays quiet about it and speaks only of real mismatches
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: Wav2Vec2Config):
        if config.do_stable_layer_norm:
            raise ValueError(
                "TimeAlignedWav2Vec2 supports the post-norm encoder (do_stable_layer_norm=False)"
            )
        super().__init__(config)
        self.feature_extractor._freeze_parameters()

    # -- conv features -------------------------------------------------------------------------
    @property
    def receptive_field(self) -> tuple[int, int]:
        """(receptive field, total stride) of the conv stack in samples: (400, 320) for wav2vec2."""
        field, stride = 1, 1
        for kernel, step in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            field += (kernel - 1) * stride
            stride *= step
        return field, stride

    def _pad_short(self, input_values: torch.Tensor) -> torch.Tensor:
        """Zero-pad (B, N) on the right to one receptive field (the official code fails below 400)."""
        field, _ = self.receptive_field
        if input_values.shape[-1] < field:
            input_values = F.pad(input_values, (0, field - input_values.shape[-1]))
        return input_values

    def conv_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """(B, N) normalised waveform → (B, T, conv_dim) conv features (~50 Hz), whole clip at once."""
        return self.feature_extractor(self._pad_short(input_values)).transpose(1, 2)

    def _first_layer_stats(self, input_values: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C) mean and biased variance of the first conv's output over time (GroupNorm statistics)."""
        layer = self.feature_extractor.conv_layers[0]
        kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
        frames = (input_values.shape[-1] - kernel) // stride + 1
        total = torch.zeros(input_values.shape[0], layer.conv.out_channels, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        for first in range(0, frames, chunk):
            last = min(first + chunk, frames)
            out = layer.conv(input_values[:, None, first * stride : (last - 1) * stride + kernel]).double()
            total += out.sum(dim=2).cpu()
            total_sq += (out * out).sum(dim=2).cpu()
        mean = total / frames
        return mean, (total_sq / frames - mean * mean).clamp_min(0.0)

    def _conv_chunk(self, samples: torch.Tensor, mean: torch.Tensor | None, var: torch.Tensor | None):
        """Conv stack on (B, 1, n) samples; the first GroupNorm uses the whole-clip (B, C) statistics."""
        layers = self.feature_extractor.conv_layers
        first = layers[0]
        hidden = first.conv(samples)
        if mean is not None:
            norm = first.layer_norm
            scale = (var + norm.eps).rsqrt().to(hidden)
            hidden = (hidden - mean.to(hidden)[:, :, None]) * scale[:, :, None]
            hidden = hidden * norm.weight[:, None] + norm.bias[:, None]
            hidden = first.activation(hidden)
        else:
            hidden = first.activation(first.layer_norm(hidden.transpose(-2, -1)).transpose(-2, -1))
        for layer in layers[1:]:
            hidden = layer(hidden)
        return hidden

    def conv_features_chunked(self, input_values: torch.Tensor, chunk_frames: int = 500) -> torch.Tensor:
        """Exactly :meth:`conv_features`, computed ``chunk_frames`` output frames at a time.

        Peak memory is that of one chunk (~10 s of audio by default) instead of the whole clip.
        """
        input_values = self._pad_short(input_values)
        field, stride = self.receptive_field
        frames = (input_values.shape[-1] - field) // stride + 1
        group_norm = self.config.feat_extract_norm == "group"
        mean, var = self._first_layer_stats(input_values, chunk_frames * 16) if group_norm else (None, None)
        pieces = []
        for first in range(0, frames, chunk_frames):
            last = min(first + chunk_frames, frames)
            samples = input_values[:, None, first * stride : (last - 1) * stride + field]
            pieces.append(self._conv_chunk(samples, mean, var))
        return torch.cat(pieces, dim=-1).transpose(1, 2)

    # -- alignment and transformer --------------------------------------------------------------
    def align_and_project(self, conv_feats: torch.Tensor, seq_len: int) -> torch.Tensor:
        """(B, T, conv_dim) → interpolate to (B, seq_len, conv_dim) → project → (B, seq_len, hidden)."""
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        aligned = F.interpolate(conv_feats.transpose(1, 2), size=seq_len, mode="linear", align_corners=True)
        hidden, _ = self.feature_projection(aligned.transpose(1, 2))
        if seq_len < self.config.mask_time_length:  # too short for one SpecAugment span
            return hidden
        return self._mask_hidden_states(hidden)  # SpecAugment: only in training mode

    def run_transformer(self, hidden: torch.Tensor, mean_hidden_states: bool = False) -> torch.Tensor:
        """Positional conv + LayerNorm + encoder layers on (B, T, hidden).

        Returns the last hidden state, or with ``mean_hidden_states`` the mean of the
        ``num_hidden_layers + 1`` hidden states (input of layer 0, output of each layer), which is
        the official ``only_last_fetures=False`` branch. LayerDrop applies in training mode.
        """
        encoder = self.encoder
        hidden = encoder.dropout(encoder.layer_norm(hidden + encoder.pos_conv_embed(hidden)))
        states = [hidden]
        for layer in encoder.layers:
            skip = (
                self.training and self.config.layerdrop > 0 and bool(torch.rand([]) < self.config.layerdrop)
            )
            if not skip:
                hidden = layer(hidden, attention_mask=None)
            states.append(hidden)
        if mean_hidden_states:
            return torch.stack(states).mean(dim=0)
        return hidden

    def encode(
        self, input_values: torch.Tensor, seq_len: int, mean_hidden_states: bool = False
    ) -> torch.Tensor:
        """The official modified forward: (B, N) normalised audio → (B, seq_len, hidden_size)."""
        hidden = self.align_and_project(self.conv_features(input_values), seq_len)
        return self.run_transformer(hidden, mean_hidden_states)

    def encode_long(
        self,
        input_values: torch.Tensor,
        seq_len: int,
        mean_hidden_states: bool = False,
        window_frames: int = 1500,
        overlap_frames: int = 150,
        chunk_frames: int = 500,
    ) -> torch.Tensor:
        """:meth:`encode` for audio of any length in bounded memory (see the module docstring).

        Args:
            input_values: (B, N) normalised waveform.
            seq_len: output frames (30 fps).
            window_frames / overlap_frames: transformer windows and their cross-fade, in output frames.
            chunk_frames: conv-feature chunk, in ~50 Hz conv frames.

        Returns:
            (B, seq_len, hidden_size); equal to :meth:`encode` when ``seq_len <= window_frames``.
        """
        conv_feats = self.conv_features_chunked(input_values, chunk_frames)
        hidden = self.align_and_project(conv_feats, seq_len)
        spans = window_spans(seq_len, window_frames, overlap_frames)
        pieces = [self.run_transformer(hidden[:, a:b], mean_hidden_states) for a, b in spans]
        return overlap_add(pieces, spans, seq_len, overlap_frames)


def find_wav2vec2_folder(search_dirs: list[Path]) -> Path | None:
    """The first ``<dir>/wav2vec2-base-960h`` (or ``<dir>`` itself) holding a config.json, else None."""
    for folder in search_dirs:
        for candidate in (Path(folder), Path(folder) / WAV2VEC2_FOLDER_NAME):
            if (candidate / "config.json").is_file():
                return candidate
    return None


def default_wav2vec2_dir() -> Path | None:
    """``<weights folder>/wav2vec2-base-960h`` (``ANIPORTRAIT_WEIGHTS``) if it is present, else None."""
    return find_wav2vec2_folder([weights_dir()])


def build_audio_encoder(
    config: Wav2Vec2Config, pretrained_dir: str | Path | None = None
) -> TimeAlignedWav2Vec2:
    """The encoder, with real weights from a local wav2vec2-base-960h folder when one is given.

    Without ``pretrained_dir`` the encoder is randomly initialised and a warning says so (outputs
    then carry no speech information; fine for tests and shape checks, not for results).

    Raises:
        ValueError: ``pretrained_dir`` is given but holds no loadable weights, or its
            architecture differs from ``config``.
    """
    if pretrained_dir is None:
        warnings.warn(
            "wav2vec2 encoder is randomly initialised (no local wav2vec2-base-960h folder given)",
            stacklevel=2,
        )
        return TimeAlignedWav2Vec2(config)
    folder = Path(pretrained_dir)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a wav2vec2 folder (config.json missing)")
    try:
        model = TimeAlignedWav2Vec2.from_pretrained(folder, local_files_only=True)
    except UNREADABLE_PRETRAINED as error:
        raise unreadable_pretrained(folder, "wav2vec2 weights", error) from error
    if model.config.hidden_size != config.hidden_size or model.config.conv_dim != config.conv_dim:
        raise ValueError(f"{folder}: hidden_size/conv_dim differ from the requested encoder config")
    # from_pretrained puts new parameters in after __init__ froze the old ones: freeze again, as the official
    # models do (measured: the released Audio2Mesh had all 95.5 M parameters trainable, conv encoder included)
    model.feature_extractor._freeze_parameters()
    logger.info("loaded wav2vec2 weights from %s", folder)
    return model
