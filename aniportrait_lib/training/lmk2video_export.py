"""Stage-1 weights out of the trainer: official ``.pth`` files, kit folders, and a sampling pipeline.

* :func:`export_stage1` writes what the official ``train_stage_1.py`` writes -
  ``reference_unet-N.pth``, ``denoising_unet-N.pth``, ``pose_guider-N.pth`` (full state dicts, official
  keys: for stage-1 networks the kit's diffusers keys *are* the official ones, see
  :mod:`aniportrait_lib.weights.lmk2video_checkpoints`) - and a kit folder per network
  (``diffusion_pytorch_model.safetensors`` + ``config.json``).
* :func:`load_stage1_official` reads those files back through the kit's official-checkpoint loader.
* :func:`to_video_unet` turns the stage-1 2-D denoiser into the ``UNetMotionModel`` that stage 2 trains and
  the pipeline samples with: 2-D weights copied, motion modules added with a zero ``proj_out`` (the
  official ``zero_initialize``), so each frame is denoised exactly as the 2-D UNet does.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel, UNetMotionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPVisionModelWithProjection

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

__all__ = ["build_stage1_pipeline", "export_stage1", "load_stage1_official", "to_video_unet"]

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
    return video.to(unet2d.device, unet2d.dtype)


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
