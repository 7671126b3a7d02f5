"""The kit's own Lmk2Video exports: stage-1 networks and stage-2 motion modules, in folders that describe
themselves (:mod:`.kit_index`).

A stage-1 export (:func:`save_stage1_run`) holds what a later notebook, the CLI or a user needs to sample or
to train stage 2 with these weights::

    stage1_b/
    ├── reference_unet-N.pth   official format, as ``train_stage_1.py`` writes it (for stage-1 networks the
    ├── denoising_unet-N.pth   kit's diffusers keys are the official ones: :mod:`.lmk2video_checkpoints`)
    ├── pose_guider-N.pth
    ├── kit/<network>/         each network as diffusion_pytorch_model.safetensors + config.json
    ├── vae/, image_encoder/   the frozen models the networks were trained against (diffusers folders)
    ├── model_config.json      the network sizes, step, frame size and face crop
    └── kit_index.json         written last: component "stage1", its files, sizes and sampling settings

A stage-2 export (:func:`export_stage2`) is ``motion_module-N.pth`` in the official key layout (what
``train_stage_2.py`` saves) with an index naming the context windows the modules were trained with and the
stage-1 denoiser they belong to. :func:`load_motion_module` reads it into a motion UNet.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNetMotionModel
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.atomic import atomic_torch_save, replace_folder, write_json
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import Lmk2VideoModelConfig, Lmk2VideoNetworks, build_stage1_networks
from aniportrait_lib.models.scheduler import DDIMConfig

from .kit_index import INDEX_FILE, made_by, write_index
from .lmk2video_checkpoints import (
    check_motion_modules,
    export_kit_folder,
    kit_to_official_unet,
    load_checkpoint,
    load_into,
    official_to_kit_unet,
)

__all__ = [
    "SamplingSettings",
    "Stage1Run",
    "export_stage1",
    "export_stage2",
    "index_stage1_export",
    "index_stage2_export",
    "latest_motion_module",
    "load_model_config",
    "load_motion_module",
    "load_stage1_official",
    "load_stage1_run",
    "save_model_config",
    "save_stage1_run",
]


@dataclass
class SamplingSettings:
    """How a stage-1 export is meant to be sampled (defaults: the official inference settings)."""

    steps: int = 25  # official --steps
    guidance_scale: float = 3.5  # official --cfg
    seed: int = 42  # official --seed
    scheduler: DDIMConfig = field(default_factory=DDIMConfig)  # official inference_v2.yaml

    @classmethod
    def from_evaluation(cls, evaluation: Any) -> SamplingSettings:
        """From a training profile's held-out evaluation settings (an object or its JSON dict with
        ``num_inference_steps``, ``guidance_scale``, ``seed`` and ``scheduler``): the kit samples its
        exports as its notebooks evaluated them."""
        get = evaluation.get if isinstance(evaluation, dict) else lambda key: getattr(evaluation, key)
        scheduler = get("scheduler")
        if isinstance(scheduler, dict):
            scheduler = DDIMConfig(**scheduler)
        return cls(int(get("num_inference_steps")), float(get("guidance_scale")), int(get("seed")), scheduler)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> SamplingSettings:
        payload = dict(payload)
        return cls(**{**payload, "scheduler": DDIMConfig(**payload["scheduler"])})


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


def load_released_stage1(networks: Lmk2VideoNetworks, folder: str | Path) -> Lmk2VideoNetworks:
    """Fill SD1.5-sized stage-1 networks from the released ``reference_unet.pth``, the 2-D part of
    ``denoising_unet.pth`` and ``pose_guider.pth`` in ``folder`` (official key format); returns them.

    Raises:
        ValueError: a file is missing or does not fit the networks (the message names the file).
    """
    folder = Path(folder)
    for name in ("reference_unet.pth", "denoising_unet.pth", "pose_guider.pth"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name} not found: the released stage-1 weights are needed")
    load_into(networks.reference_unet, load_checkpoint(folder / "reference_unet.pth"), "reference_unet.pth")
    spatial = {
        k: v for k, v in load_checkpoint(folder / "denoising_unet.pth").items() if "motion_module" not in k
    }
    load_into(networks.denoising_unet, spatial, "denoising_unet.pth (2-D part)")
    load_into(networks.pose_guider, load_checkpoint(folder / "pose_guider.pth"), "pose_guider.pth")
    return networks


def save_model_config(config: Lmk2VideoModelConfig, path: str | Path, **extra) -> Path:
    """Write the network sizes (and ``extra`` JSON-ready entries, e.g. ``image_size``) atomically."""
    return write_json(path, {"model": dataclasses.asdict(config), **extra})


def load_model_config(path: str | Path) -> tuple[Lmk2VideoModelConfig, dict]:
    """Read :func:`save_model_config`'s file → (model config, the extra entries).

    Raises:
        ValueError: the file is not readable JSON or has no ``model`` entry (names the file).
    """
    try:
        payload = json.loads(Path(path).read_text())
        model = payload.pop("model")
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(f"{path}: not a readable stage-1 model config ({error!r})") from None
    return Lmk2VideoModelConfig.from_dict(model), payload


@dataclass
class Stage1Run:
    """What :func:`load_stage1_run` returns: trained networks and the frozen models they go with."""

    networks: Lmk2VideoNetworks
    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    model: Lmk2VideoModelConfig
    step: int
    image_size: int
    crop_scale: float | None = None  # the face crop of the frames (data.face_track.portrait_crop_box)


def save_stage1_run(
    folder: str | Path,
    networks: Lmk2VideoNetworks,
    vae: AutoencoderKL,
    image_encoder: CLIPVisionModelWithProjection,
    config: Lmk2VideoModelConfig,
    step: int,
    image_size: int,
    crop_scale: float | None = None,
    sampling: SamplingSettings | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """:func:`export_stage1` + ``vae/``, ``image_encoder/`` (pretrained folders) + ``model_config.json``,
    then the folder's ``kit_index.json`` (component ``stage1``).

    Args:
        sampling: how these weights are meant to be sampled (default: the official settings).
        provenance: :func:`~.kit_index.made_by` (default: "save_stage1_run").

    The index is removed first and written last, so a folder with an index is a complete export.
    """
    folder = Path(folder)
    (folder / INDEX_FILE).unlink(missing_ok=True)
    written = export_stage1(networks, folder, step, config)
    for name, model in (("vae", vae), ("image_encoder", image_encoder)):
        save = model.save_pretrained
        written[name] = replace_folder(lambda d, save=save: save(d, safe_serialization=True), folder / name)
    extra = {"step": int(step), "image_size": int(image_size), "crop_scale": crop_scale}
    written["model_config"] = save_model_config(config, folder / "model_config.json", **extra)
    written["index"] = index_stage1_export(
        folder, sampling or SamplingSettings(), provenance or made_by("save_stage1_run")
    )
    return written


def index_stage1_export(folder: str | Path, sampling: SamplingSettings, provenance: dict[str, Any]) -> Path:
    """Write the ``stage1`` entry of ``folder``'s index from the files a stage-1 export holds.

    Raises:
        ValueError: ``model_config.json`` or a file it implies is missing (names the file).
    """
    folder = Path(folder)
    config_path = folder / "model_config.json"
    _, extra = load_model_config(config_path)
    try:
        step = int(extra["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{config_path}: not a readable stage-1 model config ({error!r})") from None
    files = [config_path, *(folder / f"{name}-{step}.pth" for name in STAGE1_FILES)]
    for sub in ("vae", "image_encoder", "kit"):
        files.extend(sorted(p for p in (folder / sub).rglob("*") if p.is_file()))
    config = {
        "step": step,
        "image_size": int(extra["image_size"]),
        "crop_scale": extra.get("crop_scale"),
        "sampling": dataclasses.asdict(sampling),
    }
    return write_index(folder, "stage1", files, config, provenance)


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


# --------------------------------------------------------------------------------------------------
# stage 2: motion modules


def export_stage2(
    networks: Lmk2VideoNetworks,
    folder: str | Path,
    step: int,
    context: dict[str, int] | None = None,
    stage1_denoiser: str | Path | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``motion_module-<step>.pth`` (official key layout, as ``train_stage_2.py`` saves it), indexed.

    Args:
        context: ``context_frames`` / ``context_overlap`` the modules were trained and evaluated with
            (generation uses them; default: the official 16 / 4).
        stage1_denoiser: the stage-1 ``denoising_unet-N.pth`` the modules were trained on; recorded so
            that a loader can tell when they are exported beside another one.
    """
    state = {
        k: v.detach().cpu().clone()
        for k, v in networks.denoising_unet.state_dict().items()
        if "motion_modules" in k
    }
    path = Path(folder) / f"motion_module-{step}.pth"
    (path.parent / INDEX_FILE).unlink(missing_ok=True)
    atomic_torch_save(kit_to_official_unet(state), path)
    index_stage2_export(path, context or {}, provenance or made_by("export_stage2"), stage1_denoiser)
    return path


def index_stage2_export(
    motion_file: str | Path,
    context: dict[str, int],
    provenance: dict[str, Any],
    stage1_denoiser: str | Path | None = None,
) -> Path:
    """Write the ``motion_module`` entry of the index beside ``motion_file``."""
    motion_file = Path(motion_file)
    config: dict[str, Any] = {"file": motion_file.name, "step": _motion_step(motion_file.name)}
    config.update({key: int(value) for key, value in context.items()})
    if stage1_denoiser is not None and Path(stage1_denoiser).is_file():
        denoiser = Path(stage1_denoiser)
        config["stage1_denoiser"] = {"file": denoiser.name, "bytes": denoiser.stat().st_size}
    return write_index(motion_file.parent, "motion_module", [motion_file], config, provenance)


def latest_motion_module(folder: str | Path) -> Path | None:
    """The ``motion_module-<step>.pth`` with the highest step in ``folder``, or None."""
    found = [(step, path) for path in Path(folder).glob("motion_module-*.pth")
             if (step := _motion_step(path.name)) is not None]  # fmt: skip
    return max(found)[1] if found else None


def _motion_step(name: str) -> int | None:
    """The step of a ``motion_module-<step>.pth`` file name, or None for any other name."""
    match = re.fullmatch(r"motion_module-(\d+)\.pth", name)
    return int(match.group(1)) if match else None


def load_motion_module(unet: UNetMotionModel, path: str | Path) -> None:
    """Fill every motion module of ``unet`` from an official-layout ``motion_module-<step>.pth``.

    Only the file's motion-module tensors are used; they are checked before any weight of ``unet`` changes.

    Raises:
        ValueError: the file is unreadable, or its motion modules are not this UNet's: the message names the
            file, the motion-module keys it lacks (count and the first few) and what it holds instead (e.g.
            "a 2-D UNet checkpoint (…, no motion_modules keys)").
    """
    path = Path(path)
    converted = check_motion_modules(unet, load_checkpoint(path), path)
    load_into(unet, converted, path.name, strict=False)
