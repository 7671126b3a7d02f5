"""Notebook 07's study: the videos notebook 05 generated, measured as the papers measure a method.

The papers compare methods on a test set (HDTF, CelebV) with FID, FVD, LSE-C/D, CSIM and LMD
(:mod:`aniportrait_lib.evaluation.field_table`). Here the test set is the mini corpus's held-out clips,
cut and sized as notebook 05 generated them (:func:`heldout_reference_set`), the generated set the
``<clip>_true_pose.mp4`` videos notebook 05 wrote, and the field metrics are those whose networks are in
the weights folder (:func:`metric_networks`); the others are skipped with one line each. Published rows
(other data, other scale) are shown beside the table for orientation only.

The same measurement from the shell: ``python -m aniportrait_lib.evaluate`` (:mod:`aniportrait_lib.evaluate`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aniportrait_lib.evaluation.field_table import FIELD_COLUMNS, FieldTable, FieldTableConfig
from aniportrait_lib.evaluation.generation_eval import heldout_truth
from aniportrait_lib.evaluation.video_pairs import VideoPair
from aniportrait_lib.plots import image_grid
from aniportrait_lib.video_io import probe_video, read_frames_at, write_video
from aniportrait_lib.weights.layout import METRIC_COMPONENTS, check_component

__all__ = [
    "GENERATED_SUFFIX",
    "EvaluateStudyConfig",
    "evaluate_study_config",
    "generation_settings",
    "heldout_reference_set",
    "log_field_table",
    "metric_networks",
    "network_table",
    "pair_frames_figure",
    "study_config_for_table",
]

GENERATED_SUFFIX = "_true_pose"
"""Notebook 05's held-out videos: ``<clip>_true_pose.mp4`` (mouth from the speech, true head pose)."""


@dataclass(frozen=True)
class EvaluateStudyConfig:
    """How much notebook 07 measures, per profile."""

    max_frames: int | None = None  # first frames of each clip measured; None: all (the papers' way)
    name: str = "kit"  # label of the measured row


_STUDY_CONFIGS = {
    # quick / cpu: 2 / 8 held-out clips of ~70-90 frames; MediaPipe re-extracts every measured frame twice
    # (kit measures and LMD, generated and real), ~35 ms per frame and video on 2 busy cores: 48 / 32 frames
    # per clip keep the notebook within its 30 s / 60 s and still hold three / two 16-frame FVD clips
    "quick": EvaluateStudyConfig(max_frames=48, name="kit (quick)"),
    "cpu": EvaluateStudyConfig(max_frames=32, name="kit (cpu)"),
    "gpu": EvaluateStudyConfig(max_frames=None, name="kit (gpu)"),
}


def evaluate_study_config(profile: str) -> EvaluateStudyConfig:
    """Notebook 07's sizes for a profile name ("quick", "cpu", "gpu"; others get the defaults)."""
    return _STUDY_CONFIGS.get(profile, EvaluateStudyConfig())


def metric_networks(folder: str | Path) -> dict[str, Path | str]:
    """Each field metric's network under the weights folder ``folder``: component key → the file, or (a
    ``str``) why it is absent, e.g. ``"<folder>/metrics/i3d_torchscript.pt not found (from ...)"``."""
    folder = Path(folder)
    networks: dict[str, Path | str] = {}
    for component in METRIC_COMPONENTS:
        if check_component(component, folder).present:
            networks[component.key] = folder / component.path
        else:
            networks[component.key] = f"{folder / component.path} not found (from {component.source})"
    return networks


def network_table(networks: dict[str, Path | str]) -> pd.DataFrame:
    """Which network each field metric uses, and whether it is here: one row per weights component."""
    rows = {
        c.key: {"used for": c.used_for.removeprefix("optional: "),
                "file": str(networks[c.key]) if isinstance(networks[c.key], Path) else c.path,
                "present": isinstance(networks[c.key], Path)}
        for c in METRIC_COMPONENTS
    }  # fmt: skip
    return pd.DataFrame(rows).T


def generation_settings(generation_dir: str | Path) -> tuple[int, float | None]:
    """Frame size (px) and face crop (× face height; None: whole frames) notebook 05 generated with, read
    from the ``config.json`` it saved in ``generation_dir``.

    Raises:
        ValueError: the folder holds no notebook-05 config (run notebook 05 first).
    """
    path = Path(generation_dir) / "config.json"
    try:
        config = json.loads(path.read_text())["weights"]["config"]
        return int(config["width"]), config.get("face_crop_scale")
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path}: no generation settings of notebook 05 ({err}); run notebook 05 first"
        ) from err


def heldout_reference_set(corpus, out_dir: str | Path, size: int, crop_scale: float | None) -> Path:
    """Write every held-out clip of the mini corpus as the test set's ``<clip>.mp4`` (with its speech) in
    ``out_dir``: the true frames cut and sized as notebook 05 generated them (``size`` px, ``crop_scale``;
    :func:`~aniportrait_lib.evaluation.generation_eval.heldout_truth`). Returns ``out_dir``."""
    out_dir = Path(out_dir)
    for spec in corpus.split("heldout"):
        truth = heldout_truth(corpus, spec.clip_id, size, crop_scale)
        write_video(out_dir / f"{spec.clip_id}.mp4", truth.frames, 30.0, audio=(truth.samples, 16_000))
    return out_dir


def pair_frames_figure(pair: VideoPair, columns: int = 6):
    """Evenly spaced frames of a pair, the generated video's (top row) over the real one's (bottom row), at
    the same frame indices → a ``matplotlib.figure.Figure``."""
    count = min(probe_video(pair.generated).num_frames, probe_video(pair.reference).num_frames)
    picks = np.linspace(0, count - 1, columns).round().astype(int)
    images = [*read_frames_at(pair.generated, picks), *read_frames_at(pair.reference, picks)]
    titles = [f"generated {i}" for i in picks] + [f"real {i}" for i in picks]
    return image_grid(images, titles, columns=columns, width=1.6)


_LOGGED = (  # column, metric name, direction, tolerance, unit, description
    ("PSNR↑", "eval_psnr", "higher", 1.0, "dB", "generated vs real frames, mean over clips"),
    ("SSIM↑", "eval_ssim", "higher", 0.05, "", "generated vs real frames, mean over clips"),
    ("mouth corr↑", "eval_mouth_corr", "higher", 0.2, "", "re-extracted mouth opening, generated vs real"),
    ("no face↓", "eval_no_face_fraction", "lower", 0.25, "", "generated frames without a face"),
    ("LMD↓", "eval_lmd", "lower", 0.5, "px", "mouth landmark distance (MediaPipe), generated vs real"),
)


def log_field_table(run, result: FieldTable) -> dict[str, float]:
    """Record the measured row with ``run.log_metric`` (a notebook run): the kit's measures, LMD, and the
    number of field metrics that ran (the others were skipped). Not-measurable values are not logged."""
    logged = {}
    for column, name, direction, tolerance, unit, description in _LOGGED:
        value = result.row[column]
        if not math.isnan(value):
            logged[name] = run.log_metric(
                name, value, direction=direction, tolerance=tolerance, rel_tolerance=0.25, unit=unit,
                description=description,
            )  # fmt: skip
    ran = sum(not math.isnan(result.row[c]) for c in FIELD_COLUMNS)
    logged["eval_field_columns_measured"] = run.log_metric(
        "eval_field_columns_measured", ran, direction="higher",
        description=f"columns of the papers' table measured here (of {len(FIELD_COLUMNS)}; rest skipped)",
    )  # fmt: skip
    return logged


def study_config_for_table(study: EvaluateStudyConfig) -> FieldTableConfig:
    """The field table's config for notebook 07's sizes."""
    return FieldTableConfig(max_frames=study.max_frames)
