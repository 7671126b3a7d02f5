"""Head-pose templates: a video's head motion as a (T, 6) array at 30 fps (``pose_temp.npy``).

AniPortrait can drive a portrait with the head motion of a reference video instead of Audio2Pose.
The official ``scripts/generate_ref_pose.py`` builds that template as follows, reproduced here:

1. per frame, the canonical→camera matrix ``M_i`` (``trans_mat``); extraction stops at the first
   frame without a face;
2. relative pose ``M_0⁻¹ · M_i`` → 6-vector [euler xyz degrees, translation] (frame 0 = zeros);
3. resample to 30 fps by per-channel linear interpolation from ``linspace(0, n/fps, n)`` to
   ``linspace(0, n/fps, int(n·30/fps))``;
4. smooth with the clipped centred moving average, window 5;
5. save as float64 ``(T, 6)`` with ``np.save``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aniportrait_lib.landmarks.pose import relative_poses, smooth_pose_seq

if TYPE_CHECKING:
    from aniportrait_lib.landmarks.extract import LandmarkExtractor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseTemplateConfig:
    """Resampling and smoothing of pose templates (official ``generate_ref_pose.py`` values)."""

    target_fps: float = 30.0
    """Frame rate of the template (the rate of the generated videos)."""
    smooth_window: int = 5
    """Moving-average window in frames, after resampling."""


def resample_linear(values: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Per-channel linear resampling of (n, C) samples at ``fps`` to ``int(n·target/fps)`` samples.

    Both time grids span ``[0, n/fps]`` inclusive (``np.linspace``), as in the official script,
    so the first and last samples are kept exactly.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    old_time = np.linspace(0.0, n / fps, n)
    new_time = np.linspace(0.0, n / fps, int(n * target_fps / fps))
    return np.stack([np.interp(new_time, old_time, values[:, c]) for c in range(values.shape[1])], axis=1)


def pose_template_from_matrices(
    trans_mats: np.ndarray, fps: float, config: PoseTemplateConfig = PoseTemplateConfig()
) -> np.ndarray:
    """Steps 2–4: (n, 4, 4) per-frame ``trans_mat`` at ``fps`` → (T, 6) float64 template at 30 fps."""
    mats = np.asarray(trans_mats, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1:] != (4, 4) or len(mats) < 2:
        raise ValueError(f"expected (n >= 2, 4, 4) matrices, got {mats.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    poses = relative_poses(mats)
    resampled = resample_linear(poses, fps, config.target_fps)
    return smooth_pose_seq(resampled, config.smooth_window)


def usable_prefix(found: np.ndarray, source: str) -> int:
    """Number of leading frames with a face (the official script stops at the first failure)."""
    found = np.asarray(found, dtype=bool)
    if len(found) == 0 or not found[0]:
        raise ValueError(f"no face found in {source} frame 0: cannot build a pose template")
    n = len(found) if found.all() else int(np.argmin(found))
    if n < len(found):
        logger.warning("%s: no face in frame %d; the pose template stops there (%d frames)", source, n, n)
    return n


def pose_template_from_video(
    video_path: str | Path,
    extractor: LandmarkExtractor | None = None,
    config: PoseTemplateConfig = PoseTemplateConfig(),
) -> np.ndarray:
    """Steps 1–4 on a video file: (T, 6) float64 template at ``config.target_fps``.

    Args:
        video_path: any video PyAV reads; its own frame rate is used for the time grid.
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor` to reuse;
            default a new one with per-frame detection (``video_running_mode="image"``, as the
            official script), closed afterwards.
    """
    # MediaPipe only when a video is read (the landmarks package's rule: only .extract imports it)
    from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor

    owned = extractor is None
    extractor = extractor or LandmarkExtractor(ExtractorConfig(video_running_mode="image"))
    try:
        video = extractor.detect_video(video_path)
    finally:
        if owned:
            extractor.close()
    n = usable_prefix(video.found, str(video_path))
    return pose_template_from_matrices(video.trans_mat[:n], video.fps, config)


def save_pose_template(path: str | Path, template: np.ndarray) -> Path:
    """Step 5: ``np.save`` a (T, 6) template as float64 (``pose_temp.npy``); returns the path."""
    template = np.asarray(template, dtype=np.float64)
    if template.ndim != 2 or template.shape[1] != 6:
        raise ValueError(f"{path}: a pose template has shape (T, 6), got {template.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, template)
    return path
