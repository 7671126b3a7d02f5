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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel, UNetMotionModel
from torch import nn
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
from aniportrait_lib.models.scheduler import DDIMConfig, build_scheduler
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet

from .lmk2video_checkpoints import (
    check_motion_modules,
    compare_state_dicts,
    image_encoder_to_kit,
    load_checkpoint,
    load_into,
    load_official_denoising_unet,
    official_to_kit_unet,
)

__all__ = [
    "Lmk2VideoComponents",
    "load_official_components",
    "load_oracle_components",
    "materialise",
    "oracle_state_dict",
]


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


def _count(module: nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f} M parameters"


def materialise(
    build: Callable[[], nn.Module],
    state_dict: Mapping[str, torch.Tensor] | Callable[[nn.Module], Mapping[str, torch.Tensor]],
    source: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build a network without allocating its random initial weights and fill it straight from ``state_dict``.

    The module is built with its parameters on the ``meta`` device (``accelerate.init_empty_weights``); each
    tensor of the file is then cast to ``dtype``, moved to ``device`` and *assigned* as the parameter. A
    memory-mapped checkpoint therefore never gets a second copy on the host: float32 on the CPU keeps pointing
    at the file's pages, float16 on a GPU streams through. Peak host memory is about one component's converted
    tensors instead of (random init + file + cast) for all of them.

    Args:
        build: makes the (empty) module, e.g. ``lambda: build_reference_unet(config)``.
        state_dict: in the module's own key names; must hold every key (strict). Or a function of the empty
            module that returns it (to check a file against the module before anything is assigned).
    Raises:
        ValueError: keys or shapes that do not match (naming ``source``).
    """
    with init_empty_weights():  # parameters on "meta"; buffers (e.g. positional tables) real, on the CPU
        module = build()
    if callable(state_dict):
        state_dict = state_dict(module)
    report = compare_state_dicts(state_dict, module.state_dict(), source)
    if not report.ok:
        raise ValueError(f"cannot load {report}")
    module.load_state_dict(_cast(state_dict, device, dtype), strict=True, assign=True)
    return module.to(device, dtype)  # buffers the file does not hold (built on the CPU) follow


def load_official_components(
    folder: str | Path,
    vae_folder: str | Path | None = None,
    image_encoder_folder: str | Path | None = None,
    official_compat: bool = False,
    unet_config: dict | None = None,
    guider_config: MultiScalePoseGuiderConfig | None = None,
    scheduler_config: DDIMConfig | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    log: Callable[[str], None] | None = None,
) -> Lmk2VideoComponents:
    """Lmk2Video from a folder in the official ``pretrained_weights`` layout, on ``device`` in ``dtype``.

    Loaded one component at a time, each straight to its place (:func:`materialise`; the ``.pth`` files
    memory-mapped), so host memory peaks near the largest component, not the sum: measured on the full-size
    stand-in folder by ``benchmarks/load_weights.py``.

    Args:
        folder: holds ``reference_unet.pth``, ``denoising_unet.pth``, ``motion_module.pth`` and
            ``pose_guider.pth`` (and, by default, the folders below).
        vae_folder: diffusers folder of ``stabilityai/sd-vae-ft-mse`` (default ``folder/sd-vae-ft-mse``).
        image_encoder_folder: the sd-image-variations ``image_encoder`` (default ``folder/image_encoder``).
        official_compat: the guider keeps train-mode BatchNorm, as the official inference scripts run it.
        unet_config: UNet config; default ``folder/stable-diffusion-v1-5/unet/config.json``, else SD1.5.
        guider_config: default the released guider (320 channels, 16×88 heads).
        scheduler_config: default the official inference scheduler.
        device, dtype: where the networks end up (every one, whatever dtype its files were saved in).
        log: called with one line per component (what, from where, dtype, device).
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
    dtype_name = str(dtype).removeprefix("torch.")

    def done(name: str, module: nn.Module, source: Path | str) -> None:
        if log is not None:
            log(f"loaded {name:<15} {_count(module):>20}  {dtype_name:<8} {device!s:<6} from {source}")

    reference = materialise(
        lambda: build_reference_unet(unet_config), load_checkpoint(folder / "reference_unet.pth"),
        "reference_unet.pth", device, dtype,
    )  # fmt: skip
    done("reference_unet", reference, folder / "reference_unet.pth")
    files = ("denoising_unet.pth", "motion_module.pth")

    def denoiser_state(unet: nn.Module) -> dict[str, torch.Tensor]:
        # the official scripts load motion_module.pth first, then denoising_unet.pth: its keys take precedence
        # each file is cast (and its mapping dropped) before the next is opened: host memory then holds one
        # mapped file at a time, not both (3.4 + 1.8 GB for the released float32 files)
        spatial = _cast(official_to_kit_unet(load_checkpoint(folder / files[0]), files[0]), device, dtype)
        motion = check_motion_modules(unet, load_checkpoint(folder / files[1]), folder / files[1], spatial)
        return {**_cast(motion, device, dtype), **spatial}

    denoiser = materialise(
        lambda: build_denoising_unet(unet_config), denoiser_state, " + ".join(files), device, dtype
    )
    done("denoising_unet", denoiser, f"{folder / files[0]} + {files[1]}")
    guider_config = guider_config or MultiScalePoseGuiderConfig()
    if official_compat != guider_config.official_compat:
        guider_config = replace(guider_config, official_compat=official_compat)
    guider = materialise(
        lambda: MultiScalePoseGuider(guider_config), load_checkpoint(folder / "pose_guider.pth"),
        "pose_guider.pth", device, dtype,
    )  # fmt: skip
    done("pose_guider", guider, folder / "pose_guider.pth")
    vae = build_vae(folder=vae_folder).to(device, dtype)
    done("vae", vae, vae_folder)
    encoder = build_clip_image_encoder(folder=image_encoder_folder).to(device, dtype)
    done("image_encoder", encoder, image_encoder_folder)
    scheduler = build_scheduler(scheduler_config)
    return Lmk2VideoComponents(vae, encoder, reference, denoiser, guider, scheduler).eval()


def _cast(state: Mapping[str, torch.Tensor], device, dtype) -> dict[str, torch.Tensor]:
    return {
        k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()
    }
