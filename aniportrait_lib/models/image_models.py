"""The frozen image models of Lmk2Video: the VAE and the CLIP image encoder (spec §3.1).

Both are third-party models the official code loads with ``from_pretrained``. The kit builds them from a
config (no model hub): the full-size configs below are the published ones (facts), tiny ones come from the
oracle's ``configs.json``. Real weights are read only from a local folder (diffusers / transformers layout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffusers import AutoencoderKL
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from aniportrait_lib.pretrained_errors import UNREADABLE_PRETRAINED, unreadable_pretrained

__all__ = [
    "CLIP_VIT_L14_CONFIG",
    "SD_VAE_FT_MSE_CONFIG",
    "VAE_SCALING_FACTOR",
    "build_clip_image_encoder",
    "build_clip_image_processor",
    "build_vae",
]

VAE_SCALING_FACTOR = 0.18215  # SD1.x latent scale (official pipelines multiply/divide by it)

SD_VAE_FT_MSE_CONFIG: dict[str, Any] = {
    # stabilityai/sd-vae-ft-mse config.json
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
}

CLIP_VIT_L14_CONFIG: dict[str, Any] = {
    # lambdalabs/sd-image-variations-diffusers image_encoder/config.json (ViT-L/14, 224 px)
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}


def build_vae(config: dict[str, Any] | None = None, folder: str | Path | None = None) -> AutoencoderKL:
    """``AutoencoderKL`` from a local diffusers folder if present, else from ``config`` (sd-vae-ft-mse).

    Raises:
        ValueError: the folder's weights cannot be loaded (names the file and what is wrong with it).
    """
    if folder is not None and Path(folder, "config.json").is_file():
        try:
            return AutoencoderKL.from_pretrained(str(folder), local_files_only=True)
        except UNREADABLE_PRETRAINED as error:
            raise unreadable_pretrained(folder, "VAE", error) from error
    return AutoencoderKL(**(config or SD_VAE_FT_MSE_CONFIG))


def build_clip_image_encoder(
    config: dict[str, Any] | None = None, folder: str | Path | None = None
) -> CLIPVisionModelWithProjection:
    """CLIP image encoder (``image_embeds`` (b, projection_dim)) from a local folder, else from ``config``.

    Raises:
        ValueError: the folder's weights cannot be loaded (names the file and what is wrong with it).
    """
    if folder is not None and Path(folder, "config.json").is_file():
        try:
            return CLIPVisionModelWithProjection.from_pretrained(str(folder), local_files_only=True)
        except UNREADABLE_PRETRAINED as error:
            raise unreadable_pretrained(folder, "CLIP image encoder", error) from error
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**(config or CLIP_VIT_L14_CONFIG)))


def build_clip_image_processor() -> CLIPImageProcessorPil:
    """``CLIPImageProcessor()`` with its library defaults (what the official code instantiates; no hub).

    The PIL backend is used explicitly (the official transformers 4.30 resized with PIL; torchvision is
    not a kit dependency).

    Defaults: resize shortest side to 224 (bicubic), centre crop 224, scale 1/255, CLIP mean/std.
    """
    return CLIPImageProcessorPil()
