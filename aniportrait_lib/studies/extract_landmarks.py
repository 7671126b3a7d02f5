"""What notebook 01 shows of landmark extraction: a source | pose-image video, and the metrics it logs.

The extraction itself is :mod:`aniportrait_lib.landmarks.extract`, its scoring against the mini corpus's
truth :func:`aniportrait_lib.evaluation.landmark_metrics.evaluate_extraction_on_corpus`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.plots import side_by_side_video

__all__ = ["METRICS", "log_extraction_metrics", "pose_image_video"]


def pose_image_video(
    path: str | Path,
    frames: np.ndarray,
    lmks: np.ndarray,
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Write ``[source | pose image]`` side by side, labelled, as an MP4 (with optional audio).

    Args:
        frames: (T, H, W, 3) uint8 RGB source frames.
        lmks: (T, 478, 3) normalised landmarks (NaN rows: no face, drawn as a black pose image).
    """
    h, w = frames.shape[1:3]
    poses = (
        np.zeros((h, w, 3), np.uint8)
        if np.isnan(points).any()
        else draw_landmarks((w, h), points, normed=True)
        for points in lmks
    )
    return side_by_side_video(path, {"source": frames, "pose image": poses}, fps, audio)


METRICS = (  # name, column of the extraction table, direction, tolerance, rel_tolerance, unit, description
    ("extraction_landmark_px", "landmark_px", "lower", 0.1, 0.2, "px",
     "mean 2D landmark error on held-out corpus clips"),
    ("extraction_rotation_deg", "rotation_deg", "lower", 0.2, 0.2, "°", "mean head-rotation error"),
    ("extraction_mesh_cm", "mesh_cm", "lower", 0.02, 0.2, "cm", "mean canonical-mesh vertex error"),
    ("extraction_found_fraction", "found_fraction", "higher", 0.0, 0.0, "", "frames with a face found"),
)  # fmt: skip
"""Extraction against the corpus's truth, each the mean over the held-out clips; the baselines in
``baselines/*.json`` judge them by these names, directions and tolerances."""


def log_extraction_metrics(run, table, prepared_clips: int) -> dict[str, float]:
    """Log notebook 01's :data:`METRICS` and the prepared clip count with ``run.log_metric``
    (:class:`~aniportrait_lib.runner.notebook.NotebookRun`).

    Args:
        table: one row per held-out clip with the fields of
            :class:`~aniportrait_lib.evaluation.landmark_metrics.ExtractionError` as columns
            (``pandas.DataFrame``).
        prepared_clips: how many corpus clips dataset preparation wrote (must stay exactly the same).

    Returns:
        name → logged value.
    """
    logged = {}
    for name, column, direction, tolerance, rel, unit, description in METRICS:
        logged[name] = run.log_metric(
            name, table[column].mean(), direction=direction, tolerance=tolerance, rel_tolerance=rel,
            unit=unit, description=description,
        )  # fmt: skip
    logged["prepared_clips"] = run.log_metric(
        "prepared_clips", prepared_clips, direction="equal",
        description="corpus clips through dataset preparation",
    )  # fmt: skip
    return logged
