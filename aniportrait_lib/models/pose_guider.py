"""Pose guiders: turn drawn landmark images into feature maps that are added to the denoising UNet.

Three variants share one interface (:class:`PoseGuiderBase`)::

    features = guider(pose_images, ref_pose)   # pose_images (b, 3, f, H, W), ref_pose (b, 3, H, W) or None
    # -> list of feature maps, each (b, C_k, f, h_k, w_k)

* :class:`SingleScalePoseGuider` - AnimateAnyone's original guider (paper §3.2 of AnimateAnyone, as
  released in Moore-AnimateAnyone): a small conv stem at 1/8 resolution with a zero-initialised output
  conv to 320 channels. Returns one map, added after the UNet's ``conv_in``. Ignores ``ref_pose``.
* :class:`MultiScalePoseGuider` with ``reference_cross_attention=False`` - AniPortrait **as released**
  (official ``pose_guider.py``, spec §3.3): five maps (one per UNet resolution). Its four
  "cross_attn" transformers are built without ``cross_attention_dim`` and therefore contain **no
  cross-attention**: the reference-pose features are never used. The parameter names equal the official
  ones, so ``pose_guider.pth`` loads strictly.
* :class:`MultiScalePoseGuider` with ``reference_cross_attention=True`` - AniPortrait **as the paper
  describes it** (AniPortrait §3.2: "the reference image's landmarks ... interact with the target
  landmarks through cross-attention"): each transformer gains ``norm2``/``attn2`` attending from the
  target-pose tokens to the reference-pose tokens of the same scale. ``attn2.to_out`` starts at zero,
  so with official weights loaded (``strict=False``; only ``norm2``/``attn2`` are new) it starts out
  computing exactly what the released guider computes.

``official_compat`` (off by default) reproduces two quirks of the official inference scripts:
BatchNorm stays in training mode at inference (batch statistics; running stats are updated), and pose
images enter as ``2·uint8 − 1`` (range [−1, 509]) instead of [−1, 1] (see :func:`pose_images_to_tensor`).
One deliberate difference: the released guider also runs the reference pose through its convolutions
(and, in train-mode BatchNorm, folds it into the running statistics) before ignoring it; the kit skips
that dead computation, so outputs are identical but the running statistics see only the target poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from einops import rearrange, repeat
from torch import nn

__all__ = [
    "MultiScalePoseGuider",
    "MultiScalePoseGuiderConfig",
    "PoseGuiderBase",
    "SingleScalePoseGuider",
    "SingleScalePoseGuiderConfig",
    "pose_images_to_tensor",
]


def pose_images_to_tensor(images: np.ndarray | torch.Tensor, official_compat: bool = False) -> torch.Tensor:
    """uint8 pose images ``(f, H, W, 3)`` / ``(H, W, 3)`` -> float ``(3, f, H, W)`` / ``(3, H, W)``.

    The kit maps ``v`` to ``v / 127.5 − 1`` (range [−1, 1], what training used). With ``official_compat``
    it maps to ``2·v − 1`` (range [−1, 509]): diffusers 0.24's ``VaeImageProcessor`` did not divide numpy
    uint8 input by 255, and the official inference scripts pass numpy uint8 arrays (spec §3.3).
    """
    tensor = torch.as_tensor(np.asarray(images))
    if tensor.dtype != torch.uint8 or tensor.shape[-1] != 3 or tensor.ndim not in (3, 4):
        raise ValueError(
            f"pose images must be uint8 (..., H, W, 3); got {tuple(tensor.shape)} {tensor.dtype}"
        )
    values = tensor.float()
    values = 2.0 * values - 1.0 if official_compat else values / 127.5 - 1.0
    return values.movedim(-1, 0)  # (3, [f,] H, W)


class PoseGuiderBase(nn.Module):
    """Common interface: ``forward(pose_images, ref_pose=None) -> list[(b, C_k, f, h_k, w_k)]``.

    Subclasses implement :meth:`encode_frames` on frames folded into the batch. ``official_compat``
    keeps every BatchNorm in training mode, even after ``.eval()`` (the official scripts never call
    ``pose_guider.eval()``; spec §3.3).
    """

    official_compat: bool = False

    def train(self, mode: bool = True) -> PoseGuiderBase:
        super().train(mode)
        if self.official_compat:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.train(True)
        return self

    def encode_frames(self, frames: torch.Tensor, ref_pose: torch.Tensor | None, num_frames: int):
        """frames ``(b·f, 3, H, W)``, ref_pose ``(b, 3, H, W)`` or None -> ``[(b·f, C_k, h_k, w_k), ...]``."""
        raise NotImplementedError

    def forward(self, pose_images: torch.Tensor, ref_pose: torch.Tensor | None = None) -> list[torch.Tensor]:
        """pose_images ``(b, 3, f, H, W)``, ref_pose ``(b, 3, H, W)``/None -> ``[(b, C_k, f, h_k, w_k)]``."""
        if pose_images.ndim != 5 or pose_images.shape[1] != 3:
            raise ValueError(f"pose_images must be (b, 3, f, H, W); got {tuple(pose_images.shape)}")
        batch, _, num_frames = pose_images.shape[:3]
        frames = rearrange(pose_images, "b c f h w -> (b f) c h w")
        features = self.encode_frames(frames, ref_pose, num_frames)
        return [rearrange(x, "(b f) c h w -> b c f h w", b=batch) for x in features]


# --------------------------------------------------------------------------------------------------
# (a) AnimateAnyone's single-scale guider
# --------------------------------------------------------------------------------------------------


@dataclass
class SingleScalePoseGuiderConfig:
    """AnimateAnyone pose guider (Moore-AnimateAnyone ``PoseGuider``)."""

    latent_channels: int = 320  # output channels = SD1.5 block_out_channels[0] (added after conv_in)
    block_out_channels: tuple[int, ...] = (16, 32, 64, 128)  # AnimateAnyone paper §3.2 (ControlNet-style)
    kernel_size: int = 3  # Moore-AnimateAnyone release uses 3×3 convs (the paper text says 4×4)
    out_kernel_size: int = 3  # zero-init output conv: 3×3 in the Moore release; 1 gives a 1×1 projection
    in_channels: int = 3  # RGB pose image


class SingleScalePoseGuider(PoseGuiderBase):
    """AnimateAnyone's guider: ``conv_in`` → [conv, strided conv]×3 (SiLU) → zero-init ``conv_out``.

    Returns one map ``(b, latent_channels, f, H/8, W/8)`` (three stride-2 convs); ``ref_pose`` is ignored.
    """

    def __init__(self, config: SingleScalePoseGuiderConfig | None = None):
        super().__init__()
        self.config = config = config or SingleScalePoseGuiderConfig()
        k, channels = config.kernel_size, config.block_out_channels
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], k, padding=k // 2)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            self.blocks.append(nn.Conv2d(c_in, c_in, k, padding=k // 2))
            self.blocks.append(nn.Conv2d(c_in, c_out, k, padding=k // 2, stride=2))
        k_out = config.out_kernel_size
        self.conv_out = nn.Conv2d(channels[-1], config.latent_channels, k_out, padding=k_out // 2)
        nn.init.zeros_(self.conv_out.weight)  # ControlNet's zero convolution: starts as a no-op
        nn.init.zeros_(self.conv_out.bias)

    def encode_frames(self, frames, ref_pose, num_frames):
        x = nn.functional.silu(self.conv_in(frames))
        for block in self.blocks:
            x = nn.functional.silu(block(x))
        return [self.conv_out(x)]


# --------------------------------------------------------------------------------------------------
# (b) / (c) AniPortrait's multi-scale guider
# --------------------------------------------------------------------------------------------------


@dataclass
class MultiScalePoseGuiderConfig:
    """AniPortrait pose guider (official ``PoseGuider(noise_latent_channels=320, use_ca=True)``)."""

    latent_channels: int = 320  # noise_latent_channels; scales use ×(1, 1, 2, 4, 4) = SD1.5 block widths
    use_attention: bool = True  # use_ca: a transformer after scales 1..4 (official inference: True)
    num_attention_heads: int = 16  # official hard-codes Transformer2DModel's default 16 heads ...
    attention_head_dim: int = 88  # ... × 88 channels (inner dim 1408); the tiny oracle uses 2 × 8
    reference_cross_attention: bool = False  # True = paper variant (c): attn2 on ref-pose features
    initial_scale: float = 2.0  # learnable multiplier of f0 (official init)
    official_compat: bool = False  # train-mode BatchNorm at inference, as the official scripts run it


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


# Stem (official ``conv_layers``): (in, out, kernel, stride) → resolution /8, 128 channels.
_STEM = [(3, 3, 3, 1), (3, 16, 4, 2), (16, 16, 3, 1), (16, 32, 4, 2), (32, 32, 3, 1), (32, 64, 4, 2)]
_STEM += [(64, 64, 3, 1), (64, 128, 3, 1)]


class MultiScalePoseGuider(PoseGuiderBase):
    """AniPortrait multi-scale guider; five maps for ``conv_in`` and the outputs of down blocks 0..3.

    With ``latent_channels`` C: f0 ``(C, H/8)``, f1 ``(C, H/16)``, f2 ``(2C, H/32)``, f3 ``(4C, H/64)``,
    f4 ``(4C, H/64)`` (sizes for an H×H pose image).
    """

    def __init__(self, config: MultiScalePoseGuiderConfig | None = None):
        super().__init__()
        self.config = config = config or MultiScalePoseGuiderConfig()
        self.official_compat = config.official_compat
        c = config.latent_channels
        self.conv_layers = nn.Sequential(*[m for spec in _STEM for m in _conv_bn_relu(*spec)])
        self.final_proj = nn.Conv2d(128, c, kernel_size=1)
        self.conv_layers_1 = nn.Sequential(*_conv_bn_relu(c, c, 3), *_conv_bn_relu(c, c, 3, stride=2))
        self.conv_layers_2 = nn.Sequential(*_conv_bn_relu(c, c, 3), *_conv_bn_relu(c, 2 * c, 3, stride=2))
        self.conv_layers_3 = nn.Sequential(
            *_conv_bn_relu(2 * c, 2 * c, 3), *_conv_bn_relu(2 * c, 4 * c, 3, 2)
        )
        self.conv_layers_4 = nn.Sequential(*_conv_bn_relu(4 * c, 4 * c, 3))
        if config.use_attention:
            for k, width in enumerate((c, 2 * c, 4 * c, 4 * c), start=1):
                setattr(self, f"cross_attn{k}", self._make_transformer(width))
        self.scale = nn.Parameter(torch.full((1,), config.initial_scale))
        nn.init.zeros_(self.final_proj.weight)  # official init (training); loaded weights overwrite it
        nn.init.zeros_(self.final_proj.bias)

    def _make_transformer(self, width: int) -> Transformer2DModel:
        cfg = self.config
        transformer = Transformer2DModel(
            num_attention_heads=cfg.num_attention_heads,
            attention_head_dim=cfg.attention_head_dim,
            in_channels=width,
            cross_attention_dim=width if cfg.reference_cross_attention else None,
        )
        if cfg.reference_cross_attention:  # start as the released guider: the new branch adds zero
            for block in transformer.transformer_blocks:
                nn.init.zeros_(block.attn2.to_out[0].weight)
                nn.init.zeros_(block.attn2.to_out[0].bias)
        return transformer

    def _scale_stages(self) -> list[nn.Module]:
        return [self.conv_layers_1, self.conv_layers_2, self.conv_layers_3, self.conv_layers_4]

    def _stem(self, images: torch.Tensor) -> torch.Tensor:
        """images ``(n, 3, H, W)`` → f0 ``(n, C, H/8, W/8)``."""
        return self.final_proj(self.conv_layers(images)) * self.scale

    def _reference_tokens(self, ref_pose, batch: int, num_frames: int) -> list[torch.Tensor | None]:
        """Per-scale reference-pose tokens ``(b·f, h_k·w_k, C_k)`` for variant (c); ``None`` otherwise.

        A single reference pose ``(1, 3, H, W)`` is shared by all ``batch`` videos.
        """
        if not (self.config.use_attention and self.config.reference_cross_attention):
            return [None] * 4  # released guider: the ref pose would be computed and ignored; skip it
        if ref_pose is None or ref_pose.ndim != 4:
            raise ValueError("the paper-variant pose guider needs ref_pose (b, 3, H, W)")
        tokens, x = [], self._stem(ref_pose)
        for stage in self._scale_stages():
            x = stage(x)
            x_batch = x.expand(batch, -1, -1, -1) if x.shape[0] == 1 else x
            tokens.append(repeat(x_batch, "b c h w -> (b f) (h w) c", f=num_frames))
        return tokens

    def encode_frames(self, frames, ref_pose, num_frames):
        batch = frames.shape[0] // num_frames
        if ref_pose is not None and ref_pose.shape[0] not in (1, batch):
            raise ValueError(f"ref_pose batch {ref_pose.shape[0]} is neither 1 nor the pose batch {batch}")
        ref_tokens = self._reference_tokens(ref_pose, batch, num_frames)
        x = self._stem(frames)
        features = [x]
        for k, stage in enumerate(self._scale_stages(), start=1):
            x = stage(x)
            if self.config.use_attention:
                transformer = getattr(self, f"cross_attn{k}")
                x = transformer(x, encoder_hidden_states=ref_tokens[k - 1], return_dict=False)[0]
            features.append(x)
        return features
