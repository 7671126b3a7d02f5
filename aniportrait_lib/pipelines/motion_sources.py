"""Where the head and face motion of a generated video comes from, besides speech.

* a **pose template** (official ``pose_temp.npy``): head poses ``(T, 6)``, euler xyz degrees +
  translation relative to the portrait, one per frame at 30 fps - :func:`read_pose_template`,
  :func:`as_pose_template`;
* a **source video** whose face is reenacted onto the portrait - :func:`reenact_video`;
* and, for any per-frame motion, a change of frame rate - :func:`resample_motion`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

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


def reenact_video(
    portrait, video: Path, retarget_config=None, on_face_lost: Literal["warn", "error"] = "warn"
):
    """A source video's face motion retargeted onto ``portrait`` (official vid2vid), and its audio if any.

    Like the official script, the source is cut at its first frame without a face (a face that leaves the
    picture, or that MediaPipe loses); the frames after it are not reenacted.

    Args:
        portrait: anything with ``lmks3d`` (468, 3) and ``trans_mat`` (4, 4), e.g. a
            :class:`~aniportrait_lib.pipelines.portrait.Portrait`.
        video: the source video file.
        retarget_config: a :class:`~aniportrait_lib.landmarks.retarget.RetargetConfig` (default official).
        on_face_lost: when the face is lost before the last frame: "warn" (default) keeps the frames
            before it and says how many of how many with a ``UserWarning``; "error" raises ``ValueError``.

    Returns:
        ``(performance, audio)``: a :class:`~aniportrait_lib.landmarks.performance.Performance` with one
        frame per kept source frame, and the video's audio as ``(samples, 16000)`` (None if it has none;
        the whole track: the renderer trims it to the video).

    Raises:
        ValueError: no face in the video's first frame (or in any), an unreadable video, or, with
            ``on_face_lost="error"``, a face lost before the end (messages name the file).
    """
    if on_face_lost not in ("warn", "error"):
        raise ValueError(f"on_face_lost must be 'warn' or 'error', got {on_face_lost!r}")
    # heavy, and needed by this function only: the audio package loads torch, the extractor MediaPipe
    from aniportrait_lib.audio.features import load_waveform
    from aniportrait_lib.landmarks.extract import LandmarkExtractor

    info = probe_video(video)
    with LandmarkExtractor() as extractor, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no face found in any")  # raised as an error below
        landmarks = extractor.detect_video(video)
    total = len(landmarks.found)
    if not landmarks.found.any():
        raise ValueError(f"{video}: no face found in any of its {total} frames, nothing to reenact")
    kept = int(np.argmin(landmarks.found)) if not landmarks.found.all() else total
    if 0 < kept < total:
        seconds = f"{kept / landmarks.fps:.2f} s of {total / landmarks.fps:.2f} s"
        if on_face_lost == "error":
            raise ValueError(
                f"{video}: the face is lost at frame {kept} of {total} ({seconds} have a face); "
                f"on_face_lost='warn' reenacts the {kept} frames before it"
            )
        warnings.warn(
            f"{video}: the face is lost at frame {kept}; reenacting only the {kept} frames before it, "
            f"of {total} ({seconds})",
            stacklevel=2,
        )
    performance = retarget(landmarks, portrait, retarget_config or RetargetConfig())
    audio = (load_waveform(video), 16_000) if info.audio_sample_rate else None
    return performance, audio
