"""Where the head and face motion of a generated video comes from, besides speech.

* a **pose template** (official ``pose_temp.npy``): head poses ``(T, 6)``, euler xyz degrees +
  translation relative to the portrait, one per frame at 30 fps - :func:`read_pose_template`,
  :func:`as_pose_template`;
* a **source video** whose face is reenacted onto the portrait - :func:`reenact_video`;
* and, for any per-frame motion, a change of frame rate - :func:`resample_motion`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aniportrait_lib.landmarks.retarget import RetargetConfig, retarget
from aniportrait_lib.video_io import probe_video

__all__ = ["as_pose_template", "read_pose_template", "reenact_video", "resample_motion"]


def read_pose_template(path: str | Path) -> np.ndarray:
    """A ``pose_temp.npy`` as (T, 6) float64; ``ValueError`` naming the file if it is not one."""
    try:
        template = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npy pose template: {err}") from err
    if template.ndim != 2 or template.shape[1] != 6 or len(template) == 0:
        raise ValueError(
            f"{path}: a pose template is (T, 6) (euler xyz degrees + translation), got {template.shape}"
        )
    if not np.all(np.isfinite(template)):
        raise ValueError(f"{path}: the pose template contains NaN or infinity")
    return template.astype(np.float64)


def as_pose_template(source: str | Path | np.ndarray) -> np.ndarray:
    """A pose template from a ``.npy`` path (:func:`read_pose_template`) or a (T, 6) finite array."""
    if not isinstance(source, np.ndarray):
        return read_pose_template(source)
    if source.ndim != 2 or source.shape[1] != 6 or len(source) == 0:
        raise ValueError(f"a pose template is (T, 6) (euler xyz degrees + translation), got {source.shape}")
    if not np.all(np.isfinite(source)):
        raise ValueError("the pose template contains NaN or infinity")
    return source.astype(np.float64)


def resample_motion(values: np.ndarray, source_fps: float, target_fps: float, n_frames: int) -> np.ndarray:
    """Per-frame values ``(T, ...)`` at ``source_fps`` → ``(n_frames, ...)`` at ``target_fps``.

    Linear in time; output frame ``i`` is at ``i / target_fps`` s, clamped to the last source frame.
    """
    values = np.asarray(values, np.float64)
    times = np.minimum(np.arange(n_frames) * (source_fps / target_fps), len(values) - 1)
    low = np.floor(times).astype(int)
    high = np.minimum(low + 1, len(values) - 1)
    weight = (times - low).reshape(-1, *([1] * (values.ndim - 1)))
    return values[low] * (1 - weight) + values[high] * weight


def reenact_video(portrait, video: Path, retarget_config=None):
    """A source video's face motion retargeted onto ``portrait`` (official vid2vid), and its audio if any.

    Returns:
        ``(performance, audio)``: a :class:`~aniportrait_lib.landmarks.performance.Performance` with one
        frame per source frame, and the video's audio as ``(samples, 16000)`` (None if it has none).
    """
    # heavy, and needed by this function only: the audio package loads torch, the extractor MediaPipe
    from aniportrait_lib.audio.features import load_waveform
    from aniportrait_lib.landmarks.extract import LandmarkExtractor

    info = probe_video(video)
    with LandmarkExtractor() as extractor:
        landmarks = extractor.detect_video(video)
    performance = retarget(landmarks, portrait, retarget_config or RetargetConfig())
    audio = (load_waveform(video), 16_000) if info.audio_sample_rate else None
    return performance, audio
