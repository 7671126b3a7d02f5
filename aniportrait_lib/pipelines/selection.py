"""Which weights make the video: ``"official:<folder>"`` or ``"kit:<folder>"`` → ready-to-use models.

**official** - a folder in the official ``pretrained_weights`` layout (:mod:`aniportrait_lib.weights.layout`):
the released AniPortrait checkpoints with the SD1.5 UNet config, ``sd-vae-ft-mse``, the CLIP
``image_encoder`` and ``wav2vec2-base-960h``. Sampled with the official settings (512², 25 DDIM steps,
guidance 3.5).

**kit** - any folder holding the kit's own exports, which describe themselves
(:mod:`aniportrait_lib.weights.kit_index`): a suite run (``outputs/runs/<timestamp>-<profile>/``), the
``outputs/`` of notebooks run by hand, or a folder a user copied the exports into. Its components:

=================  ===============================================  =====================================
component          what it holds                                    needed for
=================  ===============================================  =====================================
``stage1``         stage-1 networks + the VAE and CLIP they go with  every video
``motion_module``  stage-2 motion modules (their context windows)   optional: temporal smoothing
``audio2lmk``      Audio2Mesh + Audio2Pose                          audio → video
=================  ===============================================  =====================================

Kit weights are sampled as they were evaluated when they were made: frame size, face crop, steps, guidance,
scheduler and seed from the ``stage1`` index entry, context windows from the ``motion_module`` entry.
Without motion modules the denoiser's are zero-initialised (every frame denoised as the stage-1 image
model does); :attr:`GenerationModels.notes` says so, and the note is saved with every video.

A folder that is not a complete, consistent export raises one ``ValueError`` listing what is wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from aniportrait_lib.audio.audio2mesh import Audio2Mesh
from aniportrait_lib.audio.audio2pose import Audio2Pose
from aniportrait_lib.audio.inference import MotionConfig
from aniportrait_lib.config import GenerateConfig
from aniportrait_lib.devices import Placement
from aniportrait_lib.paths import outputs_root, weights_dir
from aniportrait_lib.weights.audio_checkpoints import load_audio2mesh, load_audio2pose
from aniportrait_lib.weights.components import load_official_components
from aniportrait_lib.weights.kit_audio2lmk import load_audio2lmk_run
from aniportrait_lib.weights.kit_index import KitExport, find_export
from aniportrait_lib.weights.kit_lmk2video import SamplingSettings, load_motion_module, load_stage1_run
from aniportrait_lib.weights.layout import ComponentStatus, check_weights, format_report

from .pose2video import Pose2VideoPipeline

__all__ = [
    "GenerationModels",
    "OfficialSizes",
    "WeightsSpec",
    "default_weights_spec",
    "official_parts",
    "run_weights",
    "parse_weights_spec",
    "resolve_weights",
]


@dataclass(frozen=True)
class WeightsSpec:
    """A parsed ``"<kind>:<folder>"``."""

    kind: str  # "official" or "kit"
    folder: Path

    def __str__(self) -> str:
        return f"{self.kind}:{self.folder}"


def parse_weights_spec(spec: str | WeightsSpec) -> WeightsSpec:
    """``"official:<folder>"`` / ``"kit:<folder>"`` (``"official"`` alone: the default weights folder).

    Raises:
        ValueError: any other form (the message shows the accepted ones).
    """
    if isinstance(spec, WeightsSpec):
        return spec
    kind, colon, folder = str(spec).partition(":")
    if kind == "official" and not colon:
        return WeightsSpec("official", weights_dir())
    if kind not in ("official", "kit") or not folder:
        raise ValueError(
            f"weights {spec!r}: expected 'official:<weights folder>' or 'kit:<export or run folder>' "
            "(e.g. kit:outputs/runs/latest-cpu)"
        )
    return WeightsSpec(kind, Path(folder).expanduser())


def default_weights_spec(profile: str | None = None) -> str:
    """The weights used when none are named.

    With a profile: ``gpu`` the official folder (``weights_dir()``); ``quick`` / ``cpu`` the newest suite run
    of that profile, else ``outputs/`` (notebooks run by hand). Without one (the plain command line): the
    official folder when it holds everything audio → video needs, else as for ``cpu``.
    """
    if profile is None:
        complete = all(s.present for s in check_weights(weights_dir()) if s.component.key in _OFFICIAL_ALL)
        return f"official:{weights_dir()}" if complete else default_weights_spec("cpu")
    if profile == "gpu":
        return f"official:{weights_dir()}"
    latest = outputs_root() / "runs" / f"latest-{profile}"
    return f"kit:{latest if latest.exists() else outputs_root()}"


# --------------------------------------------------------------------------------------------------
# resolved models


@dataclass
class GenerationModels:
    """Everything :func:`~aniportrait_lib.pipelines.generate.audio_to_video` / ``pose_to_video`` need."""

    weights: str  # the resolved spec, "official:<folder>" or "kit:<folder>" (absolute)
    pipeline: Pose2VideoPipeline  # float32, CPU, eval mode
    audio2mesh: Audio2Mesh | None  # None when only pose → video was asked for
    audio2pose: Audio2Pose | None  # likewise
    config: GenerateConfig  # sampling settings these weights are meant for (size, steps, guidance)
    motion: MotionConfig  # how their audio models' output becomes motion
    files: dict[str, str] = field(default_factory=dict)  # part → file or folder it was loaded from
    notes: list[str] = field(default_factory=list)  # what a user should know (e.g. no motion module)
    placement: dict[str, str] = field(default_factory=lambda: {"device": "cpu", "dtype": "float32"})

    def to(self, device, dtype: torch.dtype = torch.float32) -> GenerationModels:
        """Every video network to ``device`` in ``dtype`` (all of them: a folder saved in float16 is cast too)
        and the audio models to ``device`` in float32 (small; their windows are averaged in float32)."""
        for module in self.pipeline.components.values():
            if isinstance(module, torch.nn.Module):
                module.to(device, dtype)
        for model in (self.audio2mesh, self.audio2pose):
            if model is not None:
                model.to(device)
        self.placement = {"device": str(device), "dtype": str(dtype).removeprefix("torch.")}
        return self

    def describe(self) -> dict:
        """JSON-ready summary (saved beside every video)."""
        return {"weights": self.weights, "files": dict(self.files), "notes": list(self.notes),
                "placement": dict(self.placement), "config": asdict(self.config),
                "motion": asdict(self.motion)}  # fmt: skip


def _load_kit(folder: Path, audio: bool) -> GenerationModels:
    """Models from the kit export(s) in ``folder`` (see the module docstring)."""
    export = find_export(folder)
    export.require(
        ["stage1", "audio2lmk"] if audio else ["stage1"], "audio → video" if audio else "pose → video"
    )
    stage1_entry = export["stage1"]
    sampling = SamplingSettings.from_dict(stage1_entry.config["sampling"])
    stage1 = load_stage1_run(stage1_entry.folder)
    pipeline = Pose2VideoPipeline.from_stage1(
        stage1.networks, stage1.vae, stage1.image_encoder, stage1.model.unet, sampling.scheduler
    )
    files = {"stage1": str(stage1_entry.folder)}
    notes: list[str] = []
    context = _load_motion(export, pipeline, files, notes)
    config = GenerateConfig(
        width=stage1.image_size, height=stage1.image_size, steps=sampling.steps,
        guidance_scale=sampling.guidance_scale, seed=sampling.seed,
        face_crop_scale=stage1.crop_scale,  # the face crop the stage-1 frames were cut to (None: whole)
        **context,
    )  # fmt: skip
    models = GenerationModels(f"kit:{folder}", pipeline, None, None, config, MotionConfig(), files, notes)
    if audio:
        exported = load_audio2lmk_run(export["audio2lmk"].folder)
        models.audio2mesh, models.audio2pose = exported.audio2mesh, exported.audio2pose
        models.motion = exported.motion
        models.files["audio2lmk"] = str(export["audio2lmk"].folder)
    return models


def _load_motion(
    export: KitExport, pipeline: Pose2VideoPipeline, files: dict[str, str], notes: list[str]
) -> dict[str, int]:
    """Fill the denoiser's motion modules from the export's ``motion_module`` component, if any; returns
    the ``context_frames`` / ``context_overlap`` they were trained and evaluated with.

    Motion modules attend over the frames of one window; trained on 8-frame clips they have never seen 16
    at once, and measured on the cpu corpus the longer window damps the mouth (held-out mouth-opening
    correlation 0.68 → 0.78 on clip004 when generated with the 8-frame windows they were trained on).
    """
    entry = export.get("motion_module")
    if entry is None:
        notes.append(
            f"no stage-2 motion modules in {export.root} (component motion_module, e.g. from notebook "
            "04_train_motion_module): the motion modules are zero-initialised, so every frame is denoised by "
            "the stage-1 image model alone (no temporal smoothing)"
        )
        return {}
    path = entry.path(entry.config["file"])
    load_motion_module(pipeline.denoising_unet, path)
    files["motion_module"] = str(path)
    context = {k: int(entry.config[k]) for k in ("context_frames", "context_overlap") if k in entry.config}
    if len(context) < 2:
        notes.append(
            f"{entry.index} does not say which context windows the motion modules were trained with: "
            "left at the official 16 frames, overlap 4"
        )
        return {}
    return context


# --------------------------------------------------------------------------------------------------
# official folders


@dataclass(frozen=True)
class OfficialSizes:
    """Network sizes of an official-layout folder; ``None`` everywhere = the released models.

    Only needed for folders holding other sizes (e.g. the tiny test oracle written in the official layout).
    """

    unet_config: dict | None = None  # default: the folder's stable-diffusion-v1-5/unet/config.json
    guider_config: object | None = None  # MultiScalePoseGuiderConfig
    scheduler_config: object | None = None  # DDIMConfig (default: official inference)
    audio2mesh_config: object | None = None  # Audio2MeshConfig
    audio2pose_config: object | None = None  # Audio2PoseConfig


_OFFICIAL_VIDEO = ("vae", "image_encoder", "reference_unet", "denoising_unet", "motion_module", "pose_guider")
_OFFICIAL_AUDIO = ("wav2vec2", "audio2mesh", "audio2pose")
_OFFICIAL_ALL = _OFFICIAL_VIDEO + _OFFICIAL_AUDIO


def run_weights(profile: str, run_dir: str | Path) -> str:
    """The weights a notebook of a run generates with (notebooks 05 and 06): the official folder
    (``weights_dir()``) for the ``gpu`` profile, else the kit exports notebooks 02-04 wrote into ``run_dir``
    (the notebook's output root: the suite's run folder, or ``outputs/`` when run by hand)."""
    return f"official:{weights_dir()}" if profile == "gpu" else f"kit:{Path(run_dir)}"


def official_parts(folder: Path, audio: bool) -> list[Path]:
    """The files and folders of an official-layout ``folder`` that generation loads (those present)."""
    needed = _OFFICIAL_VIDEO + (_OFFICIAL_AUDIO if audio else ())
    return [
        Path(folder) / s.component.path
        for s in check_weights(folder)
        if s.component.key in needed and s.present
    ]


def _check_official(folder: Path, audio: bool) -> None:
    needed = _OFFICIAL_VIDEO + (_OFFICIAL_AUDIO if audio else ())
    statuses: list[ComponentStatus] = [s for s in check_weights(folder) if s.component.key in needed]
    if not all(s.present for s in statuses):
        raise ValueError(
            f"official weights folder {folder} is incomplete for {'audio' if audio else 'pose'} → video:\n"
            + format_report(statuses, folder)
        )


def _load_official(
    folder: Path, audio: bool, sizes: OfficialSizes, placement: Placement, official_compat: bool, log
) -> GenerationModels:
    _check_official(folder, audio)
    parts = load_official_components(
        folder, official_compat=official_compat, unet_config=sizes.unet_config,
        guider_config=sizes.guider_config, scheduler_config=sizes.scheduler_config,
        device=placement.device, dtype=placement.dtype, log=log,
    )  # fmt: skip
    pipeline = Pose2VideoPipeline.from_components(parts, official_compat=official_compat)
    config = GenerateConfig(wrap_around=official_compat)
    models = GenerationModels(f"official:{folder}", pipeline, None, None, config, MotionConfig())
    models.placement = placement.to_dict()
    models.files = {"lmk2video": str(folder)}
    if not official_compat:
        models.notes.append(
            "sampled the kit's way, not the official scripts': eval-mode BatchNorm in the pose guider, pose "
            "images in [-1, 1], open-ended context windows (official_compat=False)"
        )
    if audio:
        wav2vec2 = folder / "wav2vec2-base-960h"
        for name, loader, config_ in (("audio2mesh", load_audio2mesh, sizes.audio2mesh_config),
                                      ("audio2pose", load_audio2pose, sizes.audio2pose_config)):  # fmt: skip
            model = loader(folder / f"{name}.pt", config_, wav2vec2).to(placement.device)
            setattr(models, name, model)
            if log is not None:
                count = sum(p.numel() for p in model.parameters()) / 1e6
                log(f"loaded {name:<15} {count:>9.1f} M parameters  float32  {placement.device:<6} "
                    f"from {folder / f'{name}.pt'} + {wav2vec2.name}")  # fmt: skip
        models.files["audio2lmk"] = str(folder)
    return models


def resolve_weights(
    spec: str | WeightsSpec,
    audio: bool = True,
    official_sizes: OfficialSizes | None = None,
    progress_bar: bool = False,
    placement: Placement | None = None,
    official_compat: bool = True,
    log: Callable[[str], None] | None = None,
) -> GenerationModels:
    """Load everything a generation run needs from ``spec`` (see the module docstring).

    Args:
        audio: also load Audio2Mesh / Audio2Pose (audio → video); False for pose → video only.
        official_sizes: network sizes of an ``official:`` folder that does not hold the released models.
        progress_bar: show the pipeline's per-step progress bar.
        placement: device and dtype (:func:`aniportrait_lib.devices.resolve_placement`); default the CPU in
            float32. ``official:`` files are loaded straight there, one component at a time.
        official_compat: ``official:`` weights only - sample as the official scripts do (train-mode BatchNorm
            in the guider, ``2·uint8 − 1`` pose inputs, wrap-around context windows; spec §3.3, §3.5). False
            samples them the kit's way (and says so in :attr:`GenerationModels.notes`).
        log: called with one line per loaded component (what, from where, dtype, device).

    Raises:
        ValueError: a malformed spec, a missing folder, or an incomplete one (every missing piece listed).
    """
    parsed = parse_weights_spec(spec)
    folder = parsed.folder.resolve()
    if not folder.is_dir():
        raise ValueError(f"weights {parsed}: {folder} is not a folder")
    placement = placement or Placement("cpu", torch.float32, "default")
    with _quiet_loading():
        if parsed.kind == "kit":
            models = _load_kit(folder, audio).to(placement.device, placement.dtype)
            if log is not None:
                for part, source in models.files.items():
                    log(f"loaded {part:<15} {placement.dtype_name:<8} {placement.device:<6} from {source}")
        else:
            models = _load_official(
                folder, audio, official_sizes or OfficialSizes(), placement, official_compat, log
            )
    models.pipeline.set_progress_bar_config(disable=not progress_bar)
    return models


@contextlib.contextmanager
def _quiet_loading():
    """No per-file "Loading weights" bars (transformers) and no dtype-cast notices (diffusers) while the
    models are read: the folder check above already says what is loaded, and problems still raise."""
    bars, verbosity = transformers_logging.is_progress_bar_enabled(), diffusers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
