"""Stage-1 weights out of the trainer: official ``.pth`` files, kit folders, and a sampling pipeline.

* :func:`export_stage1` writes what the official ``train_stage_1.py`` writes -
  ``reference_unet-N.pth``, ``denoising_unet-N.pth``, ``pose_guider-N.pth`` (full state dicts, official
  keys: for stage-1 networks the kit's diffusers keys *are* the official ones, see
  :mod:`aniportrait_lib.weights.lmk2video_checkpoints`) - and a kit folder per network
  (``diffusion_pytorch_model.safetensors`` + ``config.json``).
* :func:`load_stage1_official` reads those files back through the kit's official-checkpoint loader.
* :func:`save_stage1_run` / :func:`load_stage1_run` keep everything a later notebook needs to sample or
  train stage 2 with these weights: the official files, the frozen VAE and CLIP encoder the networks were
  trained against (diffusers / transformers folders) and the model sizes (``model_config.json``).
* :func:`to_video_unet` turns the stage-1 2-D denoiser into the ``UNetMotionModel`` that stage 2 trains and
  the pipeline samples with: 2-D weights copied, motion modules added with a zero ``proj_out`` (the
  official ``zero_initialize``), so each frame is denoised exactly as the 2-D UNet does.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel, UNetMotionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.atomic import write_json
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.scheduler import DDIMConfig, build_scheduler
from aniportrait_lib.models.unets import MotionModuleConfig, build_denoising_unet
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.weights.lmk2video_checkpoints import (
    export_kit_folder,
    kit_to_official_unet,
    load_checkpoint,
    load_into,
    official_to_kit_unet,
)

from .checkpoint import atomic_torch_save
from .lmk2video import Lmk2VideoNetworks, build_stage1_networks
from .lmk2video_config import Lmk2VideoModelConfig

__all__ = [
    "Stage1Run",
    "build_stage1_pipeline",
    "export_stage1",
    "load_model_config",
    "load_stage1_official",
    "load_stage1_run",
    "save_model_config",
    "save_stage1_run",
    "to_video_unet",
]

STAGE1_FILES = ("reference_unet", "denoising_unet", "pose_guider")


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def export_stage1(
    networks: Lmk2VideoNetworks, folder: str | Path, step: int, config: Lmk2VideoModelConfig
) -> dict[str, Path]:
    """Write ``<name>-<step>.pth`` (official format) and ``kit/<name>/`` for the three networks.

    Returns:
        name → path of the official file (and ``"kit"`` → the kit folder root).
    """
    folder = Path(folder)
    written = {}
    for name in STAGE1_FILES:
        module = getattr(networks, name)
        state = _state(module)
        official = kit_to_official_unet(state) if name != "pose_guider" else state
        written[name] = folder / f"{name}-{step}.pth"
        atomic_torch_save(official, written[name])
        kit_config = (
            config.unet if name != "pose_guider" else {"guider": config.guider, **vars(module.config)}
        )
        export_kit_folder(module, folder / "kit" / name, kit_config)
    written["kit"] = folder / "kit"
    return written


def load_stage1_official(folder: str | Path, step: int, config: Lmk2VideoModelConfig) -> Lmk2VideoNetworks:
    """Fresh networks filled strictly from ``<name>-<step>.pth`` in ``folder`` (official key format).

    Raises:
        ValueError: a file is missing or its keys/shapes do not match (the message names the file).
    """
    networks = build_stage1_networks(config)
    for name in STAGE1_FILES:
        path = Path(folder) / f"{name}-{step}.pth"
        load_into(getattr(networks, name), official_to_kit_unet(load_checkpoint(path), path.name), path.name)
    return networks


def save_model_config(config: Lmk2VideoModelConfig, path: str | Path, **extra) -> Path:
    """Write the network sizes (and ``extra`` JSON-ready entries, e.g. ``image_size``) atomically."""
    return write_json(path, {"model": dataclasses.asdict(config), **extra})


def load_model_config(path: str | Path) -> tuple[Lmk2VideoModelConfig, dict]:
    """Read :func:`save_model_config`'s file → (model config, the extra entries)."""
    payload = json.loads(Path(path).read_text())
    model = dict(payload.pop("model"))
    model["single_guider_channels"] = tuple(model["single_guider_channels"])
    return Lmk2VideoModelConfig(**model), payload


def _replace_folder(build, destination: Path) -> Path:
    """Write a folder with ``build(tmp)`` beside ``destination``, then swap it in (no half-written folder)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    old = destination.with_name(f".{destination.name}.old")
    try:
        build(tmp)
        if destination.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
        os.replace(tmp, destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return destination


@dataclass
class Stage1Run:
    """What :func:`load_stage1_run` returns: trained networks and the frozen models they go with."""

    networks: Lmk2VideoNetworks
    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    model: Lmk2VideoModelConfig
    step: int
    image_size: int
    crop_scale: float | None = None  # the face crop the frames were cut to (lmk2video_data.portrait_crop_box)


def save_stage1_run(
    folder: str | Path,
    networks: Lmk2VideoNetworks,
    vae: AutoencoderKL,
    image_encoder: CLIPVisionModelWithProjection,
    config: Lmk2VideoModelConfig,
    step: int,
    image_size: int,
    crop_scale: float | None = None,
) -> dict[str, Path]:
    """:func:`export_stage1` + ``vae/``, ``image_encoder/`` (pretrained folders) + ``model_config.json``.

    The config file is written last, so a folder with ``model_config.json`` is complete.
    """
    folder = Path(folder)
    written = export_stage1(networks, folder, step, config)
    for name, model in (("vae", vae), ("image_encoder", image_encoder)):
        save = model.save_pretrained
        written[name] = _replace_folder(lambda d, save=save: save(d, safe_serialization=True), folder / name)
    extra = {"step": int(step), "image_size": int(image_size), "crop_scale": crop_scale}
    written["model_config"] = save_model_config(config, folder / "model_config.json", **extra)
    return written


def load_stage1_run(folder: str | Path) -> Stage1Run:
    """Read a :func:`save_stage1_run` folder back (official-format networks through the kit's loader).

    Raises:
        FileNotFoundError: ``model_config.json`` is missing (the run did not finish exporting).
        ValueError: a network file is missing or does not match the saved sizes.
    """
    folder = Path(folder)
    config_path = folder / "model_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: {folder} is not a complete stage-1 export (run notebook 03 to the end)"
        )
    model, extra = load_model_config(config_path)
    networks = load_stage1_official(folder, extra["step"], model)
    vae = build_vae(folder=folder / "vae").requires_grad_(False).eval()
    encoder = build_clip_image_encoder(folder=folder / "image_encoder").requires_grad_(False).eval()
    return Stage1Run(
        networks, vae, encoder, model, int(extra["step"]), int(extra["image_size"]), extra.get("crop_scale")
    )


def to_video_unet(
    unet2d: UNet2DConditionModel, config: dict, motion: MotionModuleConfig | None = None
) -> UNetMotionModel:
    """Stage-1 2-D denoiser → ``UNetMotionModel`` with zero-output motion modules (per-frame identical)."""
    video = build_denoising_unet(config, motion)
    report = load_into(video, unet2d.state_dict(), "stage-1 denoiser", strict=False)
    if report.unexpected:
        raise ValueError(f"stage-1 denoiser keys unknown to the motion UNet: {report.unexpected[:5]}")
    with torch.no_grad():
        for name, module in video.named_modules():
            if name.endswith("proj_out") and "motion_modules" in name:
                module.weight.zero_()
                module.bias.zero_()
    video = video.to(unet2d.device)
    return video if video.dtype == unet2d.dtype else video.to(unet2d.dtype)


def build_stage1_pipeline(
    networks: Lmk2VideoNetworks,
    vae: AutoencoderKL,
    image_encoder: CLIPVisionModelWithProjection,
    unet_config: dict,
    scheduler: DDIMConfig | None = None,
) -> Pose2VideoPipeline:
    """A :class:`Pose2VideoPipeline` sampling with copies of the stage-1 networks (the trainer's stay intact).

    The copies carry plain attention processors and no hooks; the pipeline installs its own per call.
    """
    reference_unet = copy.deepcopy(networks.reference_unet)
    reference_unet.set_attn_processor(AttnProcessor2_0())
    return Pose2VideoPipeline(
        vae=vae,
        image_encoder=image_encoder,
        reference_unet=reference_unet.eval(),
        denoising_unet=to_video_unet(networks.denoising_unet, unet_config).eval(),
        pose_guider=copy.deepcopy(networks.pose_guider).eval(),
        scheduler=build_scheduler(scheduler),
    )
