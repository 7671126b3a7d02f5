"""The weights folder: which real pretrained weights the kit can use, where each must be, which are present.

The layout is the one the official AniPortrait README documents for ``./pretrained_weights``, so a
folder prepared for the official code works here unchanged. Nothing is ever downloaded: users
place the files; the kit says exactly what is missing and what each missing piece disables.

Besides the official README's files, the folder may hold two optional ones: FILM's ``film_net_fp16.pt``
(frame interpolation) and AnimateDiff's ``mm_sd_v15_v2.ckpt`` (:data:`ANIMATEDIFF_FILE`), where the
official ``train_stage_2.py`` expects it: the motion modules stage-2 training starts from. Generation
needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aniportrait_lib.paths import weights_dir


@dataclass(frozen=True)
class WeightComponent:
    """One pretrained component and how to recognise it on disk."""

    key: str
    """Short name used across the kit (``"sd15_unet"``, ``"audio2mesh"`` …)."""
    path: str
    """Location relative to the weights folder (a file or a folder)."""
    files: tuple[tuple[str, ...], ...]
    """For a folder: groups of alternatives, one file of each group must exist inside it."""
    used_for: str
    """What the component is needed for."""
    source: str
    """Where users get it (the official README's sources)."""
    optional: bool = False


ANIMATEDIFF_FILE = "mm_sd_v15_v2.ckpt"
"""AnimateDiff v2 motion modules, stage 2's starting point (spec §4); at the root of the weights folder."""

METRICS_DIR = "metrics"
"""Sub-folder of the weights folder holding the field metrics' networks (evaluation only, all optional)."""

METRIC_COMPONENTS: tuple[WeightComponent, ...] = (
    WeightComponent(
        "fid_inception",
        f"{METRICS_DIR}/inception-2015-12-05.pt",
        (),
        "optional: FID (Inception-v3 pool features, TorchScript)",
        "NVIDIA stylegan2-ada-pytorch metrics, file inception-2015-12-05.pt",
        optional=True,
    ),
    WeightComponent(
        "fvd_i3d",
        f"{METRICS_DIR}/i3d_torchscript.pt",
        (),
        "optional: FVD (Kinetics-400 I3D features, TorchScript)",
        "the StyleGAN-V FVD release, file i3d_torchscript.pt",
        optional=True,
    ),
    WeightComponent(
        "syncnet",
        f"{METRICS_DIR}/syncnet_v2.model",
        (),
        "optional: LSE-C / LSE-D lip-sync confidence and distance (SyncNet)",
        "joonson/syncnet_python, file syncnet_v2.model",
        optional=True,
    ),
    WeightComponent(
        "arcface",
        f"{METRICS_DIR}/w600k_r50.onnx",
        (),
        "optional: CSIM identity similarity (ArcFace ResNet-50, ONNX)",
        "insightface model pack buffalo_l, file w600k_r50.onnx",
        optional=True,
    ),
)
"""The field metrics' networks (notebook 07, ``python -m aniportrait_lib.evaluate``); a missing one skips
that metric with one line saying so."""

_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")

COMPONENTS: tuple[WeightComponent, ...] = (
    WeightComponent(
        "sd15_unet",
        "stable-diffusion-v1-5/unet",
        (("config.json",), _WEIGHTS),
        "2D weights of the reference and denoising UNets",
        "Stable Diffusion v1.5 (the unet/ folder of a diffusers-format SD1.5 repository)",
    ),
    WeightComponent(
        "vae",
        "sd-vae-ft-mse",
        (("config.json",), _WEIGHTS),
        "encoding the portrait, decoding video frames",
        "stabilityai/sd-vae-ft-mse",
    ),
    WeightComponent(
        "image_encoder",
        "image_encoder",
        (("config.json",), _HF_WEIGHTS),
        "CLIP image embedding of the portrait (cross-attention)",
        "the image_encoder/ folder of lambdalabs/sd-image-variations-diffusers",
    ),
    WeightComponent(
        "wav2vec2",
        "wav2vec2-base-960h",
        (("config.json",), ("preprocessor_config.json",), _HF_WEIGHTS),
        "speech features for Audio2Mesh / Audio2Pose",
        "facebook/wav2vec2-base-960h",
    ),
    WeightComponent("audio2mesh", "audio2mesh.pt", (), "speech → 3D mesh offsets", "AniPortrait release"),
    WeightComponent("audio2pose", "audio2pose.pt", (), "speech → head pose", "AniPortrait release"),
    WeightComponent("reference_unet", "reference_unet.pth", (), "portrait appearance", "AniPortrait release"),
    WeightComponent(
        "denoising_unet", "denoising_unet.pth", (), "video denoiser (2D part)", "AniPortrait release"
    ),
    WeightComponent(
        "motion_module", "motion_module.pth", (), "video denoiser (temporal)", "AniPortrait release"
    ),
    WeightComponent("pose_guider", "pose_guider.pth", (), "landmark conditioning", "AniPortrait release"),
    WeightComponent(
        "film",
        "film_net_fp16.pt",
        (),
        "optional FILM frame interpolation (the kit has an optical-flow fallback)",
        "dajes/frame-interpolation-pytorch release",
        optional=True,
    ),
    WeightComponent(
        "animatediff",
        ANIMATEDIFF_FILE,
        (),
        "optional: stage-2 training's starting motion modules (generation does not use it)",
        "Hugging Face guoyww/animatediff, file mm_sd_v15_v2.ckpt",
        optional=True,
    ),
    *METRIC_COMPONENTS,
)


@dataclass(frozen=True)
class ComponentStatus:
    """Whether one component is usable, and if not, what exactly is missing."""

    component: WeightComponent
    present: bool
    missing: tuple[str, ...]
    """Paths (relative to the weights folder) that were looked for and not found."""


def check_component(component: WeightComponent, folder: Path) -> ComponentStatus:
    """Look for ``component`` under ``folder``."""
    target = folder / component.path
    if not component.files:
        ok = target.is_file() and target.stat().st_size > 0
        return ComponentStatus(component, ok, () if ok else (component.path,))
    missing = []
    for group in component.files:
        if not any((target / name).is_file() for name in group):
            missing.append(f"{component.path}/{' or '.join(group)}")
    return ComponentStatus(component, not missing, tuple(missing))


def check_weights(folder: str | Path | None = None) -> list[ComponentStatus]:
    """Status of every component under ``folder`` (default: ``$ANIPORTRAIT_WEIGHTS``, else
    ``pretrained_weights/``)."""
    root = Path(folder) if folder is not None else weights_dir()
    return [check_component(c, root) for c in COMPONENTS]


def expected_layout() -> str:
    """The folder tree the kit expects, as text (for READMEs, notebooks and error messages)."""
    lines = ["pretrained_weights/"]
    for c in COMPONENTS:
        note = "  (optional)" if c.optional else ""
        if not c.files:
            lines.append(f"├── {c.path}{note}")
            continue
        head, _, leaf = c.path.rpartition("/")
        lines.append(f"├── {head}/{leaf}/" if head else f"├── {leaf}/")
        for group in c.files:
            lines.append(f"│   ├── {' | '.join(group)}")
    return "\n".join(lines)


def format_report(statuses: list[ComponentStatus], folder: Path) -> str:
    """A plain-text table of what is present and missing, for people."""
    lines = [f"weights folder: {folder}"]
    for s in statuses:
        mark = "ok     " if s.present else ("absent " if s.component.optional else "MISSING")
        lines.append(f"  {mark} {s.component.key:<15} {s.component.path:<28} {s.component.used_for}")
        label = "optional, not present" if s.component.optional else "missing"
        for path in s.missing:
            lines.append(f"          {label}: {path}  (from {s.component.source})")
    return "\n".join(lines)
