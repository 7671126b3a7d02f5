"""Which weights make the video: ``"official:<folder>"`` or ``"kit:<run folder>"`` → ready-to-use models.

**official** - a folder in the official ``pretrained_weights`` layout (:mod:`.layout`): the released
AniPortrait checkpoints with the SD1.5 UNet config, ``sd-vae-ft-mse``, the CLIP ``image_encoder`` and
``wav2vec2-base-960h``. Sampled with the official settings (512², 25 DDIM steps, guidance 3.5).

**kit** - a folder the notebooks wrote a run into: ``outputs/runs/<timestamp>-<profile>/`` from the suite
runner, or ``outputs/`` when the notebooks were run by hand. One sub-folder per notebook::

    <run>/02_train_audio2lmk/audio2lmk/          Audio2Mesh + Audio2Pose export   (notebook 02, last cell)
    <run>/03_pose_guider_study/config.json       the run's profile                (notebook 03)
    <run>/03_pose_guider_study/stage1_b/         stage-1 networks, VAE, CLIP      (notebook 03, last cell)
    <run>/04_train_motion_module/stage2/         motion_module-<step>.pth         (notebook 04, optional)

Kit weights are sampled as notebook 03 evaluates them: frame size (and face crop) from the run, steps,
guidance and scheduler from the profile's
:class:`~aniportrait_lib.training.lmk2video_config.Lmk2VideoEvalConfig`; the context windows are those
the motion modules were trained and evaluated with (the stage-2 export's ``config.json``).
Without a stage-2 export the denoiser's motion modules are zero-initialised (every frame denoised as the
stage-1 image model does); :attr:`GenerationModels.notes` says so, and the note is saved with every video.

An incomplete folder raises one ``ValueError`` listing every missing piece and what produces it.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aniportrait_lib.audio.inference import MotionConfig
from aniportrait_lib.paths import outputs_root, weights_dir
from aniportrait_lib.pipelines.generate import GenerateConfig

from .layout import ComponentStatus, check_weights, format_report

__all__ = [
    "KIT_LAYOUT",
    "GenerationModels",
    "KitRunLayout",
    "OfficialSizes",
    "WeightsSpec",
    "default_weights_spec",
    "latest_motion_module",
    "missing_kit_pieces",
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
    """``"official:<folder>"`` / ``"kit:<run folder>"`` (``"official"`` alone: the default weights folder).

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
            f"weights {spec!r}: expected 'official:<weights folder>' or 'kit:<run folder>' "
            "(e.g. kit:outputs/runs/latest-cpu)"
        )
    return WeightsSpec(kind, Path(folder).expanduser())


def default_weights_spec(profile: str) -> str:
    """The weights a profile uses when none are named: ``gpu`` the official folder (``weights_dir()``);
    ``quick`` / ``cpu`` the newest suite run of that profile, else ``outputs/`` (notebooks run by hand)."""
    if profile == "gpu":
        return f"official:{weights_dir()}"
    latest = outputs_root() / "runs" / f"latest-{profile}"
    return f"kit:{latest if latest.exists() else outputs_root()}"


# --------------------------------------------------------------------------------------------------
# kit runs


@dataclass(frozen=True)
class KitRunLayout:
    """Where notebooks 02-04 leave what generation needs, relative to a run folder."""

    audio: str = "02_train_audio2lmk/audio2lmk"  # training/audio2lmk_export.save_audio2lmk_run
    profile_config: str = "03_pose_guider_study/config.json"  # start_notebook / nb.save_config
    stage1: str = "03_pose_guider_study/stage1_b"  # training/lmk2video_export.save_stage1_run
    stage2: str = "04_train_motion_module/stage2"  # training/lmk2video_stage2.export_stage2


KIT_LAYOUT = KitRunLayout()

_NOTEBOOK_OF = {
    "audio": "notebook 02_train_audio2lmk, export cell",
    "profile_config": "notebook 03_pose_guider_study",
    "stage1": "notebook 03_pose_guider_study, export cell",
}
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _stage1_step(stage1: Path) -> int | None:
    try:
        return int(json.loads((stage1 / "model_config.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def missing_kit_pieces(run: str | Path, audio: bool = True, layout: KitRunLayout = KIT_LAYOUT) -> list[str]:
    """Every file a kit run lacks for generation, as ``"<relative path>  (written by <notebook>)"`` lines.

    Args:
        audio: also require the Audio2Lmk export (audio → video); pose → video needs only stage 1.
    """
    run = Path(run)
    wanted: list[tuple[str, tuple[str, ...]]] = [  # (piece, alternatives relative to the run)
        ("profile_config", (layout.profile_config,)),
        ("stage1", (f"{layout.stage1}/model_config.json",)),
        ("stage1", (f"{layout.stage1}/vae/config.json",)),
        ("stage1", tuple(f"{layout.stage1}/vae/{name}" for name in _DIFFUSERS_WEIGHTS)),
        ("stage1", (f"{layout.stage1}/image_encoder/config.json",)),
        ("stage1", tuple(f"{layout.stage1}/image_encoder/{name}" for name in _HF_WEIGHTS)),
    ]
    step = _stage1_step(run / layout.stage1)
    for name in ("reference_unet", "denoising_unet", "pose_guider"):
        wanted.append(("stage1", (f"{layout.stage1}/{name}-{step if step is not None else '<step>'}.pth",)))
    if audio:
        for name in ("audio2lmk.json", "audio2mesh.pt", "audio2pose.pt"):
            wanted.append(("audio", (f"{layout.audio}/{name}",)))
    return [
        f"{' or '.join(paths)}  (written by {_NOTEBOOK_OF[piece]})"
        for piece, paths in wanted
        if not any((run / path).is_file() for path in paths)
    ]


def latest_motion_module(stage2: str | Path) -> Path | None:
    """The ``motion_module-<step>.pth`` with the highest step in ``stage2``, or None."""
    found = []
    for path in Path(stage2).glob("motion_module-*.pth"):
        match = re.fullmatch(r"motion_module-(\d+)\.pth", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def _kit_profile(run: Path, layout: KitRunLayout) -> str:
    path = run / layout.profile_config
    try:
        return str(json.loads(path.read_text())["profile"]["name"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: cannot read the run's profile ({err})") from err


# --------------------------------------------------------------------------------------------------
# resolved models


@dataclass
class GenerationModels:
    """Everything :func:`~aniportrait_lib.pipelines.generate.audio_to_video` / ``pose_to_video`` need."""

    weights: str  # the resolved spec, "official:<folder>" or "kit:<run folder>" (absolute)
    pipeline: object  # Pose2VideoPipeline (float32, CPU, eval mode)
    audio2mesh: object | None  # Audio2Mesh, or None when only pose → video was asked for
    audio2pose: object | None  # Audio2Pose, likewise
    config: GenerateConfig  # sampling settings these weights are meant for (size, steps, guidance)
    motion: MotionConfig  # how their audio models' output becomes motion
    files: dict[str, str] = field(default_factory=dict)  # part → file or folder it was loaded from
    notes: list[str] = field(default_factory=list)  # what a user should know (e.g. no motion module)

    def to(self, device, dtype=None) -> GenerationModels:
        """Move the video networks to ``device`` / ``dtype`` and the audio models to ``device`` (float32)."""
        import torch

        for module in self.pipeline.components.values():  # each network (the guider has no ``dtype``)
            if isinstance(module, torch.nn.Module):
                same_dtype = dtype is None or next(module.parameters()).dtype == dtype
                module.to(device) if same_dtype else module.to(device, dtype)
        for model in (self.audio2mesh, self.audio2pose):
            if model is not None:
                model.to(device)
        return self

    def describe(self) -> dict:
        """JSON-ready summary (saved beside every video)."""
        return {"weights": self.weights, "files": dict(self.files), "notes": list(self.notes),
                "config": asdict(self.config), "motion": asdict(self.motion)}  # fmt: skip


def _load_kit(run: Path, audio: bool, layout: KitRunLayout) -> GenerationModels:
    from aniportrait_lib.training.audio2lmk_export import load_audio2lmk_run
    from aniportrait_lib.training.lmk2video_config import lmk2video_profile
    from aniportrait_lib.training.lmk2video_export import build_stage1_pipeline, load_stage1_run

    missing = missing_kit_pieces(run, audio, layout)
    if missing:
        raise ValueError(
            f"kit run folder {run} is incomplete for {'audio' if audio else 'pose'} → video; missing:\n  "
            + "\n  ".join(missing)
            + f"\nRun the notebooks named above with output_root={run}, or make a new run folder with "
            "python -m aniportrait_lib.runner --only 01 02 03"
        )
    profile = _kit_profile(run, layout)
    evaluation = lmk2video_profile(profile).evaluation
    stage1 = load_stage1_run(run / layout.stage1)
    pipeline = build_stage1_pipeline(stage1.networks, stage1.vae, stage1.image_encoder, stage1.model.unet,
                                     evaluation.scheduler)  # fmt: skip
    files = {"stage1": str(run / layout.stage1)}
    notes = []
    motion_file = latest_motion_module(run / layout.stage2)
    if motion_file is None:
        notes.append(
            f"no stage-2 motion module in {run / layout.stage2} (notebook 04_train_motion_module): "
            "the motion modules are zero-initialised, so every frame is denoised by the stage-1 image model "
            "alone (no temporal smoothing)"
        )
    context = {}
    if motion_file is not None:
        _load_motion_module(pipeline.denoising_unet, motion_file)
        files["motion_module"] = str(motion_file)
        context = _trained_context(motion_file.parent, notes)
    config = GenerateConfig(
        width=stage1.image_size, height=stage1.image_size, steps=evaluation.num_inference_steps,
        guidance_scale=evaluation.guidance_scale, seed=evaluation.seed,
        face_crop_scale=stage1.crop_scale,  # the face crop the stage-1 frames were cut to (None: whole)
        **context,
    )  # fmt: skip
    models = GenerationModels(f"kit:{run}", pipeline, None, None, config, MotionConfig(), files, notes)
    if audio:
        exported = load_audio2lmk_run(run / layout.audio)
        models.audio2mesh, models.audio2pose = exported.audio2mesh, exported.audio2pose
        models.motion = exported.motion
        models.files["audio2lmk"] = str(run / layout.audio)
    return models


def _trained_context(stage2: Path, notes: list[str]) -> dict[str, int]:
    """``context_frames`` / ``context_overlap`` the motion modules in ``stage2`` were trained and evaluated
    with (its ``config.json``, notebook 04); ``{}`` (official 16 / 4) with a note when it is missing.

    Motion modules attend over the frames of one window; trained on 8-frame clips they have never seen 16
    at once, and measured on the cpu corpus the longer window damps the mouth (held-out mouth-opening
    correlation 0.68 → 0.78 on clip004 when generated with the 8-frame windows they were trained on).
    """
    path = stage2 / "config.json"
    try:
        evaluation = json.loads(path.read_text())["evaluation"]
        return {"context_frames": int(evaluation["context_frames"]),
                "context_overlap": int(evaluation["context_overlap"])}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as error:
        notes.append(
            f"{path} is missing or unreadable ({error}): context windows left at the official 16 frames, "
            "overlap 4, which may not be what the motion modules were trained on"
        )
        return {}


def _load_motion_module(unet, path: Path) -> None:
    """Fill every motion module of ``unet`` from an official-layout ``motion_module-<step>.pth``."""
    from aniportrait_lib.weights.lmk2video_checkpoints import load_checkpoint, load_into, official_to_kit_unet

    report = load_into(unet, official_to_kit_unet(load_checkpoint(path), path.name), path.name, strict=False)
    missing = [key for key in report.missing if "motion_modules" in key]
    if report.unexpected or missing:
        raise ValueError(
            f"{path}: does not fit the denoiser's motion modules "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(report.unexpected)} unexpected, "
            f"e.g. {report.unexpected[:3]})"
        )


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


def _check_official(folder: Path, audio: bool) -> None:
    needed = _OFFICIAL_VIDEO + (_OFFICIAL_AUDIO if audio else ())
    statuses: list[ComponentStatus] = [s for s in check_weights(folder) if s.component.key in needed]
    if not all(s.present for s in statuses):
        raise ValueError(
            f"official weights folder {folder} is incomplete for {'audio' if audio else 'pose'} → video:\n"
            + format_report(statuses, folder)
        )


def _load_official(folder: Path, audio: bool, sizes: OfficialSizes) -> GenerationModels:
    from aniportrait_lib.models.components import load_official_components
    from aniportrait_lib.weights.audio_checkpoints import load_audio2mesh, load_audio2pose

    _check_official(folder, audio)
    parts = load_official_components(
        folder, unet_config=sizes.unet_config, guider_config=sizes.guider_config,
        scheduler_config=sizes.scheduler_config,
    )  # fmt: skip
    pipeline = parts.pipeline()
    models = GenerationModels(f"official:{folder}", pipeline, None, None, GenerateConfig(), MotionConfig())
    models.files = {"lmk2video": str(folder)}
    if audio:
        wav2vec2 = folder / "wav2vec2-base-960h"
        models.audio2mesh = load_audio2mesh(folder / "audio2mesh.pt", sizes.audio2mesh_config, wav2vec2)
        models.audio2pose = load_audio2pose(folder / "audio2pose.pt", sizes.audio2pose_config, wav2vec2)
        models.files["audio2lmk"] = str(folder)
    return models


def resolve_weights(
    spec: str | WeightsSpec,
    audio: bool = True,
    official_sizes: OfficialSizes | None = None,
    progress_bar: bool = False,
) -> GenerationModels:
    """Load everything a generation run needs from ``spec`` (see the module docstring).

    Args:
        audio: also load Audio2Mesh / Audio2Pose (audio → video); False for pose → video only.
        official_sizes: network sizes of an ``official:`` folder that does not hold the released models.
        progress_bar: show the pipeline's per-step progress bar.

    Raises:
        ValueError: a malformed spec, a missing folder, or an incomplete one (every missing piece listed).
    """
    parsed = parse_weights_spec(spec)
    folder = parsed.folder.resolve()
    if not folder.is_dir():
        raise ValueError(f"weights {parsed}: {folder} is not a folder")
    with _quiet_loading():
        if parsed.kind == "kit":
            models = _load_kit(folder, audio, KIT_LAYOUT)
        else:
            models = _load_official(folder, audio, official_sizes or OfficialSizes())
    models.pipeline.set_progress_bar_config(disable=not progress_bar)
    return models


@contextlib.contextmanager
def _quiet_loading():
    """No per-file "Loading weights" bars (transformers) and no dtype-cast notices (diffusers) while the
    models are read: the folder check above already says what is loaded, and problems still raise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    bars, verbosity = transformers_logging.is_progress_bar_enabled(), diffusers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
