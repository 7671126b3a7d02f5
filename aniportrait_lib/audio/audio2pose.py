"""Audio2Pose: speech → per-frame head pose, an autoregressive transformer decoder (spec §2.3).

    input_values ─ wav2vec2 (time-aligned) ─ in_fn ─> memory (B, T, 512)         # one audio frame per pose
    previous poses (B, T, 6) ─ pose_map ─> tokens (B, T, 512) + PPE + id_embed(style)
    decoder (8 × post-norm TransformerDecoderLayer, 8 heads, ff 1024)
        self-attention: causal with an ALiBi bias (FaceFormer): a token sees earlier tokens,
                        penalised linearly with distance, slope 1/2, 1/4, ..., 1/256 per head;
        cross-attention: pose step i sees only audio frame i (alignment mask)
    ─ pose_map_r ─> pose (B, T, 6) = euler xyz in degrees + translation

Token ``i`` is ``pose_map(pose[i-1])`` (token 0: ``pose_map(zeros)``), so the decoder output at
step ``i`` predicts pose ``i``. Training uses teacher forcing (:meth:`Audio2Pose.forward`); the
official inference (:meth:`Audio2Pose.infer`) feeds its own predictions back one frame at a time.
Parameter names equal the official ``Audio2PoseModel``; the ALiBi bias is not a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Wav2Vec2Config

from .encoder import TimeAlignedWav2Vec2, build_audio_encoder, wav2vec2_base_960h_config


@dataclass
class Audio2PoseConfig:
    """Audio2Pose sizes; defaults are the released model (inference_audio.yaml + official pose_model.py)."""

    latent_dim: int = 512  # inference_audio.yaml a2p_model.latent_dim
    out_dim: int = 6  # inference_audio.yaml a2p_model.out_dim: euler xyz (deg) + translation (spec §1.2)
    num_heads: int = 8  # official pose_model.py: nhead=8 (also the ALiBi head count)
    num_layers: int = 8  # official pose_model.py: nn.TransformerDecoder(num_layers=8)
    ff_mult: int = 2  # official pose_model.py: dim_feedforward = 2 * latent_dim
    dropout: float = 0.1  # torch TransformerDecoderLayer / official PositionalEncoding default
    max_len: int = 600  # official PositionalEncoding max_len and init_biased_mask max_seq_len (20 s)
    num_styles: int = 100  # official id_embed = nn.Embedding(100, latent_dim)
    only_last_features: bool = True  # inference_audio.yaml "only_last_fetures"
    encoder: Wav2Vec2Config = field(default_factory=wav2vec2_base_960h_config)  # spec §2.1


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sin/cos table ``pe`` (1, max_len, d) (sin on even dims, cos on odd, base 10000).

    ``pe`` is a persistent buffer because official checkpoints store it (key ``PPE.pe``).
    """

    def __init__(self, d_model: int, max_len: int = 600, dropout: float = 0.1):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        inv_freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * inv_freq)
        table[:, 1::2] = torch.cos(position * inv_freq)
        self.register_buffer("pe", table[None])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d) → (B, T, d) with T <= max_len."""
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(
                f"sequence of {x.shape[1]} frames exceeds the positional table ({self.pe.shape[1]})"
            )
        return self.dropout(x + self.pe[:, : x.shape[1]])


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi head slopes (Press et al. 2022): 2^(-8/n), 2^(-16/n), ... for a power-of-two ``n``.

    For other head counts, the slopes of the closest lower power of two are followed by every
    other slope of the next power of two (the ALiBi paper's recipe, used by FaceFormer).
    """

    def power_of_two(n: int) -> list[float]:
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    lower = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(lower) + alibi_slopes(2 * lower)[0::2][: num_heads - lower]


def alibi_causal_bias(num_heads: int, length: int) -> torch.Tensor:
    """(num_heads, length, length) additive self-attention bias.

    Entry (h, i, j) = ``-slope_h * (i - j)`` for j <= i and ``-inf`` for j > i (FaceFormer's
    ``init_biased_mask`` with period 1).
    """
    slopes = torch.tensor(alibi_slopes(num_heads), dtype=torch.float32)
    index = torch.arange(length)
    distance = (index[:, None] - index[None, :]).float()  # i - j
    bias = -slopes[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))


def audio_alignment_mask(num_poses: int, num_frames: int, device: torch.device | None = None) -> torch.Tensor:
    """(num_poses, num_frames) bool cross-attention mask, True = blocked, except (i, i)."""
    mask = torch.ones(num_poses, num_frames, dtype=torch.bool, device=device)
    diagonal = torch.arange(min(num_poses, num_frames), device=device)
    mask[diagonal, diagonal] = False
    return mask


class Audio2Pose(nn.Module):
    """wav2vec2 + autoregressive transformer decoder predicting head pose (B, T, 6).

    Args:
        config: sizes (see :class:`Audio2PoseConfig`).
        wav2vec2_dir / random_encoder_ok: as for :class:`~aniportrait_lib.audio.audio2mesh.Audio2Mesh`.
    """

    def __init__(
        self,
        config: Audio2PoseConfig | None = None,
        wav2vec2_dir: str | Path | None = None,
        random_encoder_ok: bool = False,
    ):
        super().__init__()
        cfg = self.config = config or Audio2PoseConfig()
        if wav2vec2_dir is None and random_encoder_ok:
            self.audio_encoder = TimeAlignedWav2Vec2(cfg.encoder)
        else:
            self.audio_encoder = build_audio_encoder(cfg.encoder, wav2vec2_dir)
        self.pose_map = nn.Linear(cfg.out_dim, cfg.latent_dim)
        self.in_fn = nn.Linear(cfg.encoder.hidden_size, cfg.latent_dim)
        self.PPE = SinusoidalPositionalEncoding(cfg.latent_dim, cfg.max_len, cfg.dropout)
        layer = nn.TransformerDecoderLayer(
            d_model=cfg.latent_dim,
            nhead=cfg.num_heads,
            dim_feedforward=cfg.ff_mult * cfg.latent_dim,
            dropout=cfg.dropout,
            activation="relu",
            batch_first=True,
            norm_first=False,
        )
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=cfg.num_layers)
        self.pose_map_r = nn.Linear(cfg.latent_dim, cfg.out_dim)
        self.id_embed = nn.Embedding(cfg.num_styles, cfg.latent_dim)
        self.register_buffer("alibi_bias", alibi_causal_bias(cfg.num_heads, cfg.max_len), persistent=False)

    def audio_memory(self, input_values: torch.Tensor, seq_len: int) -> torch.Tensor:
        """(B, N) normalised audio → (B, seq_len, latent_dim) decoder memory."""
        mean_hidden = not self.config.only_last_features
        return self.in_fn(self.audio_encoder.encode(input_values, seq_len, mean_hidden))

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, style_ids: torch.Tensor) -> torch.Tensor:
        """One parallel decoder pass.

        Args:
            tokens: (B, T, latent) pose tokens (token i = pose_map(pose[i-1])).
            memory: (B, S, latent) audio features, frame i aligned with token i (S >= T).
            style_ids: (B,) long, style ids in [0, num_styles).

        Returns:
            (B, T, out_dim) predicted poses.
        """
        batch, length = tokens.shape[:2]
        x = self.PPE(tokens) + self.id_embed(style_ids)[:, None]
        tgt_mask = self.alibi_bias[:, :length, :length].repeat(batch, 1, 1)  # (B·heads, T, T), batch-major
        memory_mask = audio_alignment_mask(length, memory.shape[1], memory.device)
        # tgt_is_causal=False: the bias is not a plain causal mask; also skips torch's per-call check
        hidden = self.transformer_decoder(
            x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_is_causal=False
        )
        return self.pose_map_r(hidden)

    def forward(
        self, input_values: torch.Tensor, seq_len: int, pose: torch.Tensor, style_ids: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced training pass: ground-truth poses (B, seq_len, 6) → predictions (B, seq_len, 6)."""
        memory = self.audio_memory(input_values, seq_len)
        previous = torch.cat([torch.zeros_like(pose[:, :1]), pose[:, :-1]], dim=1)
        return self.decode(self.pose_map(previous), memory, style_ids)

    @torch.no_grad()
    def generate(
        self,
        memory: torch.Tensor,
        style_ids: torch.Tensor,
        start_poses: torch.Tensor | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor:
        """Autoregressive decoding over (1, T, latent) memory.

        Args:
            start_poses: (1, P, out_dim) poses fed as the first P tokens (pose of the frame before
                the window, then the following ones); None → one zero pose (official start token).
            use_cache: decode one position per step with a key/value cache per layer and the
                cross-attention precomputed (each pose sees one audio frame), instead of re-running
                the whole decoder for every new frame; equal up to float rounding (~1e-6).
                False runs the official loop literally.

        Returns:
            (1, T, out_dim): the last full decoder output (outputs for the P-1 first frames are
            re-predictions under teacher forcing; later ones are free-running).
        """
        if start_poses is None:
            start_poses = memory.new_zeros(memory.shape[0], 1, self.config.out_dim)
        if use_cache:
            return self._generate_cached(memory, style_ids, start_poses)
        length = memory.shape[1]
        tokens = self.pose_map(start_poses)
        out = self.decode(tokens, memory, style_ids)
        while tokens.shape[1] < length:
            tokens = torch.cat([tokens, self.pose_map(out[:, -1:])], dim=1)
            out = self.decode(tokens, memory, style_ids)
        return out[:, :length]

    def _single_key_cross_attention(self, memory: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the cross-attention output for every pose step, (B, T, d).

        The alignment mask leaves pose step i exactly one audio key (frame i); a softmax over one
        key is 1, so the output is ``out_proj(v_proj(memory_i))`` whatever the query: computed
        once for all steps instead of once per step.
        """
        outputs = []
        for layer in self.transformer_decoder.layers:
            attention = layer.multihead_attn
            d = attention.embed_dim
            values = F.linear(memory, attention.in_proj_weight[2 * d :], attention.in_proj_bias[2 * d :])
            outputs.append(attention.out_proj(values))
        return outputs

    def _cached_self_attention(
        self, layer: nn.TransformerDecoderLayer, x: torch.Tensor, cache: dict, bias_row
    ):
        """``layer.self_attn`` for one new position (B, 1, d) with a key/value cache.

        Keys and values of earlier positions never change (causal attention), so they are
        projected once and kept in ``cache`` ({"k", "v"}: (B, heads, S, head_dim)).
        """
        attention = layer.self_attn
        batch, heads = x.shape[0], attention.num_heads
        q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.view(batch, 1, heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, heads, 1, hd)
        cache["k"] = k if "k" not in cache else torch.cat([cache["k"], k], dim=2)
        cache["v"] = v if "v" not in cache else torch.cat([cache["v"], v], dim=2)
        # one query row: plain softmax attention (faster on CPU than the fused kernel with a bias)
        scores = q @ cache["k"].transpose(-2, -1) / math.sqrt(q.shape[-1]) + bias_row  # (B, heads, 1, S)
        out = scores.softmax(dim=-1) @ cache["v"]
        return attention.out_proj(out.transpose(1, 2).reshape(batch, 1, -1))

    def _decoder_step(self, x: torch.Tensor, step: int, caches: list[dict], crossed: list[torch.Tensor]):
        """Run position ``step`` (B, 1, d) through the post-norm decoder layers → (B, 1, out_dim)."""
        bias_row = self.alibi_bias[:, step : step + 1, : step + 1][None]  # (1, heads, 1, step + 1)
        for index, layer in enumerate(self.transformer_decoder.layers):
            attended = self._cached_self_attention(layer, x, caches[index], bias_row)
            x = layer.norm1(x + layer.dropout1(attended))
            x = layer.norm2(x + layer.dropout2(crossed[index][:, step : step + 1]))
            fed = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
            x = layer.norm3(x + layer.dropout3(fed))
        return self.pose_map_r(x)

    def _generate_cached(self, memory: torch.Tensor, style_ids: torch.Tensor, start_poses: torch.Tensor):
        """:meth:`generate` one position at a time: (1, T, latent) memory → (1, T, out_dim)."""
        if self.transformer_decoder.layers[0].norm_first:
            raise ValueError("cached decoding implements the official post-norm layers only")
        caches: list[dict] = [{} for _ in self.transformer_decoder.layers]
        crossed = self._single_key_cross_attention(memory)
        style = self.id_embed(style_ids)[:, None]
        outputs = []
        for step in range(memory.shape[1]):
            previous = start_poses[:, step : step + 1] if step < start_poses.shape[1] else outputs[-1]
            x = self.PPE.dropout(self.pose_map(previous) + self.PPE.pe[:, step : step + 1]) + style
            outputs.append(self._decoder_step(x, step, caches, crossed))
        return torch.cat(outputs, dim=1)

    @torch.no_grad()
    def infer(
        self, input_values: torch.Tensor, seq_len: int, id_seed: torch.Tensor, use_cache: bool = False
    ) -> torch.Tensor:
        """The official ``infer(input_values (1, N), seq_len, id_seed (1,))`` → (1, seq_len, 6)."""
        return self.generate(self.audio_memory(input_values, seq_len), id_seed, use_cache=use_cache)
