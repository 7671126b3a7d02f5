"""All Lmk2Video networks together, filled from official-format weight files on disk.

:class:`~aniportrait_lib.pipelines.pose2video.Pose2VideoPipeline` ``.from_components`` samples with them.

Two sources of weights are supported, both in the **official key format** and both local:

* the released checkpoints (``pretrained_weights/``: ``reference_unet``, ``denoising_unet``,
  ``motion_module``, ``pose_guider`` ``.pth``) plus diffusers/transformers folders for the VAE and the
  image encoder - :func:`load_official_components`;
* the tiny numerical oracle (``../shared/reference/oracle``: ``configs.json`` + ``*_sd.pt``) - used by
  tests and the notebooks' ``quick`` profile - :func:`load_oracle_components`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel, UNetMotionModel
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
from aniportrait_lib.models.scheduler import DDIMConfig, build_scheduler
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet

from .lmk2video_checkpoints import (
    image_encoder_to_kit,
    load_checkpoint,
    load_into,
    load_official_denoising_unet,
)

__all__ = ["Lmk2VideoComponents", "load_official_components", "load_oracle_components", "oracle_state_dict"]


@dataclass
class Lmk2VideoComponents:
    """The six parts of a ``Pose2VideoPipeline`` (spec §3.1)."""

    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    reference_unet: UNet2DConditionModel
    denoising_unet: UNetMotionModel
    pose_guider: MultiScalePoseGuider
    scheduler: DDIMScheduler

    def eval(self) -> Lmk2VideoComponents:
        """All networks to eval mode (a guider with ``official_compat`` keeps train-mode BatchNorm)."""
        for net in (self.vae, self.image_encoder, self.reference_unet, self.denoising_unet, self.pose_guider):
            net.eval()
        return self


def oracle_state_dict(oracle_dir: str | Path, name: str) -> dict[str, torch.Tensor]:
    """An oracle ``*_sd.pt`` with fp16-stored floats restored to float32 (exact: values were fp16-rounded)."""
    state = load_checkpoint(Path(oracle_dir) / name)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _oracle_guider_config(configs: dict, official_compat: bool, **overrides) -> MultiScalePoseGuiderConfig:
    heads = configs["pose_guider"].get("Transformer2DModel_overrides", {})
    return MultiScalePoseGuiderConfig(
        latent_channels=configs["pose_guider"]["noise_latent_channels"],
        use_attention=configs["pose_guider"].get("use_ca", True),
        num_attention_heads=heads.get("num_attention_heads", 16),
        attention_head_dim=heads.get("attention_head_dim", 88),
        official_compat=official_compat,
        **overrides,
    )


def load_oracle_guider(
    oracle_dir: str | Path, official_compat: bool = False, **overrides
) -> MultiScalePoseGuider:
    """The oracle's tiny pose guider (``overrides`` go to :class:`MultiScalePoseGuiderConfig`)."""
    configs = json.loads((Path(oracle_dir) / "configs.json").read_text())
    guider = MultiScalePoseGuider(_oracle_guider_config(configs, official_compat, **overrides))
    strict = not guider.config.reference_cross_attention  # the paper variant adds norm2/attn2
    load_into(guider, oracle_state_dict(oracle_dir, "pose_guider_sd.pt"), "pose_guider_sd.pt", strict=strict)
    return guider


def load_oracle_components(oracle_dir: str | Path, official_compat: bool = False) -> Lmk2VideoComponents:
    """Tiny Lmk2Video built from ``configs.json`` and loaded (strictly) from the oracle's ``*_sd.pt``."""
    oracle_dir = Path(oracle_dir)
    configs = json.loads((oracle_dir / "configs.json").read_text())
    vae = build_vae(configs["vae"])
    load_into(vae, oracle_state_dict(oracle_dir, "vae_sd.pt"), "vae_sd.pt")
    encoder = build_clip_image_encoder(configs["clip_vision"])
    clip_state = image_encoder_to_kit(oracle_state_dict(oracle_dir, "image_encoder_sd.pt"))
    load_into(encoder, clip_state, "image_encoder_sd.pt")
    reference = build_reference_unet(configs["unet2d"])
    load_into(reference, oracle_state_dict(oracle_dir, "reference_unet_sd.pt"), "reference_unet_sd.pt")
    denoiser = build_denoising_unet(configs["unet3d"])
    full = oracle_state_dict(oracle_dir, "denoising_unet_sd.pt")
    spatial = {k: v for k, v in full.items() if "motion_module" not in k}
    motion = {k: v for k, v in full.items() if "motion_module" in k}
    load_official_denoising_unet(denoiser, spatial, motion, ("denoising_unet_sd.pt", "denoising_unet_sd.pt"))
    guider = load_oracle_guider(oracle_dir, official_compat)
    scheduler = build_scheduler(DDIMConfig(**configs["scheduler"]))
    return Lmk2VideoComponents(vae, encoder, reference, denoiser, guider, scheduler).eval()


def load_official_components(
    folder: str | Path,
    vae_folder: str | Path | None = None,
    image_encoder_folder: str | Path | None = None,
    official_compat: bool = False,
    unet_config: dict | None = None,
    guider_config: MultiScalePoseGuiderConfig | None = None,
    scheduler_config: DDIMConfig | None = None,
) -> Lmk2VideoComponents:
    """Lmk2Video from a weights folder in the official ``pretrained_weights`` layout.

    Args:
        folder: holds ``reference_unet.pth``, ``denoising_unet.pth``, ``motion_module.pth`` and
            ``pose_guider.pth`` (and, by default, the folders below).
        vae_folder: diffusers folder of ``stabilityai/sd-vae-ft-mse`` (default ``folder/sd-vae-ft-mse``).
        image_encoder_folder: the sd-image-variations ``image_encoder`` (default ``folder/image_encoder``).
        unet_config: UNet config; default ``folder/stable-diffusion-v1-5/unet/config.json``, else SD1.5.
        guider_config: default the released guider (320 channels, 16×88 heads).
        scheduler_config: default the official inference scheduler.
    Raises:
        ValueError: a file is missing or its keys/shapes do not match (the message names the file).
    """
    folder = Path(folder)
    vae_folder = Path(vae_folder or folder / "sd-vae-ft-mse")
    image_encoder_folder = Path(image_encoder_folder or folder / "image_encoder")
    for path in (vae_folder, image_encoder_folder):
        if not Path(path, "config.json").is_file():
            raise ValueError(f"no config.json in {path}: expected a local diffusers/transformers folder")
    sd_config = folder / "stable-diffusion-v1-5" / "unet" / "config.json"
    if unet_config is None and sd_config.is_file():
        unet_config = json.loads(sd_config.read_text())
    reference = build_reference_unet(unet_config)
    load_into(reference, load_checkpoint(folder / "reference_unet.pth"), "reference_unet.pth")
    denoiser = build_denoising_unet(unet_config)
    load_official_denoising_unet(
        denoiser,
        load_checkpoint(folder / "denoising_unet.pth"),
        load_checkpoint(folder / "motion_module.pth"),
    )
    guider_config = guider_config or MultiScalePoseGuiderConfig(official_compat=official_compat)
    guider = MultiScalePoseGuider(guider_config)
    load_into(guider, load_checkpoint(folder / "pose_guider.pth"), "pose_guider.pth")
    vae, encoder = build_vae(folder=vae_folder), build_clip_image_encoder(folder=image_encoder_folder)
    scheduler = build_scheduler(scheduler_config)
    return Lmk2VideoComponents(vae, encoder, reference, denoiser, guider, scheduler).eval()
