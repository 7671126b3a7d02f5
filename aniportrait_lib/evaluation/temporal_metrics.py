"""Temporal consistency of a generated video against its ground truth: flicker and landmark jitter.

Per-frame metrics (:mod:`.video_metrics`) cannot tell a smooth video from one whose frames are each good
but disagree with their neighbours. That disagreement is what the motion modules of stage 2 exist to
remove, so it is measured on its own, always **relative to the true video** (the truth moves too: a
talking head is never static, and a metric that rewarded stillness would rate a frozen image best).

* **Flicker** - per transition ``t → t+1``, the mean absolute difference between the generated and the
  true temporal differences, ``mean |(gen[t+1] − gen[t]) − (truth[t+1] − truth[t])|`` in grey levels
  (0-255, averaged over pixels and channels). Zero when the video changes exactly as the truth does;
  i.i.d. noise of standard deviation σ per frame adds about ``2σ/√π ≈ 1.13 σ``.
* **Temporal-energy ratio** - ``RMS(gen[t+1] − gen[t]) / RMS(truth[t+1] − truth[t])`` over the whole
  clip: 1 = as much frame-to-frame change as the truth, above 1 = extra change (flicker), below 1 =
  missing motion.
* Both on the whole frame, on the **face** box (all landmarks) and on the **mouth** box (lips), each box
  the union over the clip of the true landmarks' boxes, so that every frame is cut identically.
* **Landmark jitter** - MediaPipe's landmarks re-extracted from the generated frames are differentiated
  twice (acceleration ``x[t+1] − 2x[t] + x[t−1]``, pixels per frame²) and compared with the driving
  landmarks' acceleration: ``mean_k ‖a_found[t, k] − a_driving[t, k]‖``. A track that follows smooth
  driving landmarks smoothly scores ~0 whatever its constant offset; frame-to-frame wobble does not.
  Triples of frames with a missing face are skipped and counted.
* **Mouth following** - the inner-lip gap (landmarks 13-14, pixels) re-extracted from the generated frames
  against the driving one, over the frames with a face: their Pearson correlation (1 = the mouth opens and
  closes with the driving landmarks) and the ratio of their standard deviations (below 1 = the mouth moves
  less than it is told to, e.g. damped by temporal smoothing). Temporal layers can lower flicker by
  smoothing exactly this fast, small motion, so the two are read together.

Frames are uint8 ``(N, H, W, 3)``; landmarks are pixels of those frames ``(N, 468, 2)`` (NaN rows: no face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aniportrait_lib.landmarks.mouth import mouth_opening

from .video_metrics import MOUTH_LANDMARKS, detect_landmarks_px

__all__ = [
    "REGIONS",
    "TemporalScores",
    "detect_track",
    "flicker",
    "landmark_acceleration",
    "landmark_jitter",
    "mouth_following",
    "region_box",
    "score_temporal",
    "summarize_temporal",
    "temporal_differences",
    "temporal_energy_ratio",
]

REGIONS = ("frame", "face", "mouth")
"""Where flicker is measured: the whole frame, the box of all landmarks, the box of the lip landmarks."""


def _check_videos(video: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    video, truth = np.asarray(video), np.asarray(truth)
    if video.shape != truth.shape or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(
            f"expected two (N, H, W, 3) videos of the same shape; got {video.shape}, {truth.shape}"
        )
    if len(video) < 2:
        raise ValueError(f"temporal metrics need at least 2 frames; got {len(video)}")
    return video, truth


def _crop(video: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is None:
        return video
    x0, y0, x1, y1 = box
    return video[:, y0:y1, x0:x1]


def temporal_differences(video: np.ndarray) -> np.ndarray:
    """``video[t+1] − video[t]`` as float64, ``(N−1, H, W, 3)``."""
    video = np.asarray(video, dtype=np.float64)
    return video[1:] - video[:-1]


def region_box(
    lmks2d: np.ndarray, size: tuple[int, int], indices=None, margin: float = 0.15, min_side: int = 8
) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the box around ``lmks2d[:, indices]`` over **all** frames, widened and clipped.

    Args:
        lmks2d: ``(N, 468, 2)`` pixels (NaN rows are ignored).
        size: ``(W, H)`` of the frames.
        indices: landmark subset (default: all); e.g. :data:`~.video_metrics.MOUTH_LANDMARKS`.
        margin: added on every side, as a fraction of the box's larger side.
        min_side: the box is grown to at least this many pixels per side.
    Raises:
        ValueError: no finite landmark at all.
    """
    points = np.asarray(lmks2d, dtype=np.float64)
    points = points[:, list(indices)] if indices is not None else points
    points = points.reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        raise ValueError("region_box: no finite landmark in any frame")
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0)
    half_w, half_h = max((x1 - x0) / 2 + pad, min_side / 2), max((y1 - y0) / 2 + pad, min_side / 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = size
    return (
        int(np.clip(np.floor(cx - half_w), 0, width - 1)),
        int(np.clip(np.floor(cy - half_h), 0, height - 1)),
        int(np.clip(np.ceil(cx + half_w), 1, width)),
        int(np.clip(np.ceil(cy + half_h), 1, height)),
    )


def flicker(video: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Per-transition flicker ``(N−1,)``: ``mean |Δvideo − Δtruth|`` in grey levels, inside ``box``."""
    video, truth = _check_videos(video, truth)
    excess = temporal_differences(_crop(video, box)) - temporal_differences(_crop(truth, box))
    return np.abs(excess).mean(axis=(1, 2, 3))


def temporal_energy_ratio(
    video: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int] | None = None
) -> float:
    """``RMS(Δvideo) / RMS(Δtruth)`` over the clip inside ``box``; ``inf`` if only the truth is static."""
    video, truth = _check_videos(video, truth)
    generated = float(np.sqrt(np.mean(temporal_differences(_crop(video, box)) ** 2)))
    reference = float(np.sqrt(np.mean(temporal_differences(_crop(truth, box)) ** 2)))
    if reference == 0.0:
        return 1.0 if generated == 0.0 else math.inf
    return generated / reference


def landmark_acceleration(track: np.ndarray) -> np.ndarray:
    """Second differences ``x[t+1] − 2x[t] + x[t−1]`` of ``(N, K, 2)`` → ``(N−2, K, 2)`` (NaN propagates)."""
    track = np.asarray(track, dtype=np.float64)
    if track.ndim != 3 or track.shape[-1] != 2 or len(track) < 3:
        raise ValueError(f"expected a (N ≥ 3, K, 2) landmark track; got {track.shape}")
    return track[2:] - 2.0 * track[1:-1] + track[:-2]


def landmark_jitter(found: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """Per-triple jitter ``(N−2,)``: ``mean_k ‖a_found − a_driving‖`` (px/frame²), NaN if a face is missing.

    Args:
        found: re-extracted landmarks ``(N, K, 2)`` (rows of NaN where no face was found).
        driving: the landmarks the video was driven with, ``(N, K, 2)``.
    """
    found, driving = np.asarray(found, dtype=np.float64), np.asarray(driving, dtype=np.float64)
    if found.shape != driving.shape:
        raise ValueError(f"found {found.shape} and driving {driving.shape} landmarks disagree")
    difference = landmark_acceleration(found) - landmark_acceleration(driving)
    return np.linalg.norm(difference, axis=-1).mean(axis=-1)  # NaN where any of the 3 frames has no face


def mouth_following(found: np.ndarray, driving: np.ndarray) -> tuple[float, float]:
    """(correlation, std ratio) of the re-extracted and the driving inner-lip gap over the frames with a face.

    Args:
        found: re-extracted landmarks ``(N, 468, 2)`` (rows of NaN where no face was found).
        driving: the landmarks the video was driven with, ``(N, 468, 2)``.

    Returns:
        NaN for both with fewer than 3 frames with a face or a driving gap that does not move; a correlation
        of NaN (and a ratio of 0) for a re-extracted gap that does not move.
    """
    found, driving = np.asarray(found, dtype=np.float64), np.asarray(driving, dtype=np.float64)
    if found.shape != driving.shape:
        raise ValueError(f"found {found.shape} and driving {driving.shape} landmarks disagree")
    with_face = np.isfinite(found).all(axis=(1, 2))
    gap, driving_gap = mouth_opening(found[with_face]), mouth_opening(driving[with_face])
    if with_face.sum() < 3 or np.ptp(driving_gap) < 1e-9:
        return math.nan, math.nan
    ratio = float(gap.std() / driving_gap.std())
    return (math.nan if np.ptp(gap) < 1e-9 else float(np.corrcoef(gap, driving_gap)[0, 1])), ratio


def detect_track(frames: np.ndarray, extractor, upscale_to: int = 256) -> np.ndarray:
    """MediaPipe landmarks of every frame → ``(N, 468, 2)`` pixels, NaN rows where no face was found."""
    return np.stack([detect_landmarks_px(frame, extractor, upscale_to) for frame in frames])


@dataclass
class TemporalScores:
    """Temporal scores of one clip (``flicker[region]`` per transition, ``jitter`` per frame triple)."""

    flicker: dict[str, np.ndarray]  # region → (N−1,) grey levels
    energy_ratio: dict[str, float]  # region → RMS(Δvideo) / RMS(Δtruth)
    jitter: np.ndarray  # (N−2,) px/frame², NaN where a face is missing (all NaN without an extractor)
    driving_acceleration: (
        float  # mean ‖a_driving‖ over landmarks and triples (px/frame²): the scale of jitter
    )
    mouth_corr: float = math.nan  # re-extracted vs driving inner-lip gap (:func:`mouth_following`)
    mouth_motion_ratio: float = math.nan  # their std ratio (below 1: damped mouth)


def score_temporal(
    frames: np.ndarray, truth: np.ndarray, lmks2d: np.ndarray, extractor=None, upscale_to: int = 256,
    found: np.ndarray | None = None,
) -> TemporalScores:  # fmt: skip
    """Flicker and energy ratio per region and landmark jitter of ``frames`` against ``truth``.

    Args:
        frames, truth: ``(N, H, W, 3)`` uint8, consecutive frames (N ≥ 3).
        lmks2d: the driving (true) landmarks ``(N, 468, 2)`` in pixels; they also place the boxes.
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`; ``None`` skips jitter.
        found: landmarks already re-extracted from ``frames`` (:func:`detect_track`); used instead of
            ``extractor`` when given.
    """
    frames, truth = _check_videos(frames, truth)
    lmks2d = np.asarray(lmks2d, dtype=np.float64)[:, :468, :2]
    if len(lmks2d) != len(frames) or len(frames) < 3:
        raise ValueError(
            f"need ≥ 3 frames and one landmark set per frame; got {frames.shape}, {lmks2d.shape}"
        )
    size = (frames.shape[2], frames.shape[1])
    boxes = {
        "frame": None,
        "face": region_box(lmks2d, size),
        "mouth": region_box(lmks2d, size, MOUTH_LANDMARKS),
    }
    if found is None and extractor is not None:
        found = detect_track(frames, extractor, upscale_to)
    jitter = np.full(len(frames) - 2, np.nan) if found is None else landmark_jitter(found, lmks2d)
    mouth = (math.nan, math.nan) if found is None else mouth_following(found, lmks2d)
    return TemporalScores(
        flicker={name: flicker(frames, truth, box) for name, box in boxes.items()},
        energy_ratio={name: temporal_energy_ratio(frames, truth, box) for name, box in boxes.items()},
        jitter=jitter,
        driving_acceleration=float(np.linalg.norm(landmark_acceleration(lmks2d), axis=-1).mean()),
        mouth_corr=mouth[0],
        mouth_motion_ratio=mouth[1],
    )


def summarize_temporal(scores: TemporalScores) -> dict[str, float]:
    """Means over the clip: ``flicker_<region>``, ``energy_ratio_<region>``, ``jitter_px`` (over triples
    with a face in all three frames, NaN if none), ``jitter_coverage`` (share of such triples),
    ``driving_acceleration_px``, ``mouth_corr`` and ``mouth_motion_ratio`` (:func:`mouth_following`)."""
    found = np.isfinite(scores.jitter)
    summary = {f"flicker_{name}": float(values.mean()) for name, values in scores.flicker.items()}
    summary.update({f"energy_ratio_{name}": float(value) for name, value in scores.energy_ratio.items()})
    summary["jitter_px"] = float(scores.jitter[found].mean()) if found.any() else math.nan
    summary["jitter_coverage"] = float(found.mean())
    summary["driving_acceleration_px"] = scores.driving_acceleration
    summary["mouth_corr"], summary["mouth_motion_ratio"] = scores.mouth_corr, scores.mouth_motion_ratio
    return summary
