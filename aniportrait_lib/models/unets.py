"""The two UNets of Lmk2Video, assembled from stock diffusers classes (spec §3.1-3.2).

* **Reference UNet** - a ``UNet2DConditionModel`` that only exists to fill the reference-attention bank
  (its output is never used): the official class has no ``conv_norm_out`` / ``conv_out``, so we drop them
  and the official ``reference_unet.pth`` loads strictly.
* **Denoising UNet** - a ``UNetMotionModel`` (SD1.5 2-D layers + AnimateDiff motion modules) configured
  like the official ``UNet3DConditionModel`` with ``inference_v2.yaml``: heads from SD's
  ``attention_head_dim``, 8 motion heads, positional table of 32 frames, a motion module in the mid block,
  and - the one numerical difference from diffusers' defaults - motion modules that GroupNorm **each frame
  separately** (:class:`FramewiseGroupNorm`).
* **Stage-1 denoiser** - training stage 1 uses the denoiser without motion modules; a plain
  ``UNet2DConditionModel`` has exactly its parameters.

Configs are plain SD-style ``config.json`` dicts (``SD15_UNET_CONFIG`` for the real size, the oracle's
``configs.json["unet2d"]`` for the tiny test size). Note the inputs of the denoiser:
``sample (b, 4, f, h, w)`` and ``encoder_hidden_states`` repeated per frame, ``(b·f, 1, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import UNet2DConditionModel, UNetMotionModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

__all__ = [
    "SD15_UNET_CONFIG",
    "FramewiseGroupNorm",
    "MotionModuleConfig",
    "build_denoising_unet",
    "build_image_denoising_unet",
    "build_reference_unet",
    "motion_unet_kwargs",
    "use_framewise_motion_norm",
]

SD15_UNET_CONFIG: dict[str, Any] = {
    # runwayml/stable-diffusion-v1-5 unet/config.json (as quoted in manifests/README.md)
    "act_fn": "silu",
    "attention_head_dim": 8,  # SD naming: this is the number of heads
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,  # CLIP ViT-L/14 projection (image embeddings in AniPortrait)
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-5,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}

_UNET2D_KEYS = set(SD15_UNET_CONFIG) - {"up_block_types", "down_block_types"}


@dataclass
class MotionModuleConfig:
    """AnimateDiff v2 motion modules as configured by the official ``inference_v2.yaml``."""

    num_attention_heads: int = 8  # motion_module_kwargs.num_attention_heads
    max_seq_length: int = 32  # temporal_position_encoding_max_len (frames per window ≤ 32)
    mid_block: bool = True  # motion_module_mid_block
    framewise_norm: bool = True  # official GroupNorm folds frames into the batch (parity: 0.27 → 3e-6)


class FramewiseGroupNorm(nn.GroupNorm):
    """GroupNorm that normalises every frame on its own.

    Input ``(b, c, f, h, w)`` is folded to ``(b·f, c, h, w)``; 4-D input is normalised as usual. Same
    parameters (``weight``, ``bias``) as ``nn.GroupNorm``, so checkpoints are unaffected.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        folded = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        out = super().forward(folded)
        return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def use_framewise_motion_norm(unet: nn.Module) -> int:
    """Swap the ``norm`` of every motion module for a :class:`FramewiseGroupNorm`; returns how many.

    The new module reuses the old ``Parameter`` objects, so it works on the meta device and keeps weights.
    """
    count = 0
    for module in unet.modules():
        if isinstance(module, AnimateDiffTransformer3D) and not isinstance(module.norm, FramewiseGroupNorm):
            old = module.norm
            new = FramewiseGroupNorm(old.num_groups, old.num_channels, eps=old.eps, affine=old.affine)
            new.weight, new.bias = old.weight, old.bias
            module.norm = new
            count += 1
    return count


def _unet2d_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """SD-style config → ``UNet2DConditionModel`` kwargs (2-D block names; 3-D ones are mapped back)."""
    kwargs = {k: v for k, v in config.items() if k in _UNET2D_KEYS}
    kwargs["down_block_types"] = [t.replace("3D", "2D") for t in config["down_block_types"]]
    kwargs["up_block_types"] = [t.replace("3D", "2D") for t in config["up_block_types"]]
    return kwargs


def build_reference_unet(config: dict[str, Any] | None = None) -> UNet2DConditionModel:
    """Reference UNet: ``UNet2DConditionModel`` without ``conv_norm_out`` / ``conv_out``.

    Args:
        config: SD-style UNet config (default: SD1.5). Build under ``torch.device("meta")`` or
            ``accelerate.init_empty_weights()`` to inspect the full size without allocating it.
    Returns:
        A model whose ``forward(latents (b, 4, h, w), 0, encoder_hidden_states (b, 1, C))`` output equals the
        last up block's features (the official class has no output head). Only its attention banks matter.
    """
    unet = UNet2DConditionModel(**_unet2d_kwargs(config or SD15_UNET_CONFIG))
    unet.conv_norm_out = None  # diffusers skips norm and activation when this is None
    unet.conv_out = nn.Identity()
    return unet


def build_image_denoising_unet(config: dict[str, Any] | None = None) -> UNet2DConditionModel:
    """Stage-1 denoiser (no motion modules): a full ``UNet2DConditionModel`` from an SD-style config."""
    return UNet2DConditionModel(**_unet2d_kwargs(config or SD15_UNET_CONFIG))


def motion_unet_kwargs(config: dict[str, Any], motion: MotionModuleConfig) -> dict[str, Any]:
    """SD-style UNet config + motion settings → ``UNetMotionModel`` kwargs (FEASIBILITY.md points 3-4)."""
    if config.get("center_input_sample") or not config.get("flip_sin_to_cos", True):
        raise ValueError("UNetMotionModel supports only center_input_sample=False, flip_sin_to_cos=True")

    def motion_name(block_type: str) -> str:
        return block_type.replace("2D", "Motion").replace("3D", "Motion")

    return {
        "sample_size": config.get("sample_size"),
        "in_channels": config["in_channels"],
        "out_channels": config["out_channels"],
        "down_block_types": [motion_name(t) for t in config["down_block_types"]],
        "up_block_types": [motion_name(t) for t in config["up_block_types"]],
        "block_out_channels": list(config["block_out_channels"]),
        "layers_per_block": config["layers_per_block"],
        "downsample_padding": config.get("downsample_padding", 1),
        "mid_block_scale_factor": config.get("mid_block_scale_factor", 1),
        "act_fn": config.get("act_fn", "silu"),
        "norm_num_groups": config.get("norm_num_groups", 32),
        "norm_eps": config.get("norm_eps", 1e-5),
        "cross_attention_dim": config["cross_attention_dim"],
        "use_linear_projection": config.get("use_linear_projection", False),
        # SD1.5's "attention_head_dim" is really the head count; UNetMotionModel ignores that key.
        "num_attention_heads": config["attention_head_dim"],
        "motion_num_attention_heads": motion.num_attention_heads,
        "motion_max_seq_length": motion.max_seq_length,
        "use_motion_mid_block": motion.mid_block,
    }


def build_denoising_unet(
    config: dict[str, Any] | None = None, motion: MotionModuleConfig | None = None
) -> UNetMotionModel:
    """Denoising UNet: ``UNetMotionModel`` configured as the official 3-D UNet (spec §3.2).

    Args:
        config: SD-style UNet config (default SD1.5; 2-D or 3-D block names are both accepted).
        motion: motion-module settings (default: official ``inference_v2.yaml``).
    Returns:
        A model called as ``unet(sample (b, 4, f, h, w), t, encoder_hidden_states (b·f, 1, C)).sample``
        → ``(b, 4, f, h, w)``. Pose features are added by :mod:`.pose_injection`, reference attention by
        :mod:`.reference_attention`.
    """
    motion = motion or MotionModuleConfig()
    unet = UNetMotionModel(**motion_unet_kwargs(config or SD15_UNET_CONFIG, motion))
    if motion.framewise_norm:
        use_framewise_motion_norm(unet)
    return unet
