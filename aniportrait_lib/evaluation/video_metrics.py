"""How close generated frames are to the truth: pixels (PSNR/SSIM, whole frame and mouth) and landmarks.

For a pose-driven video model two questions matter and are measured separately:

* **Does it look like the target frame?** PSNR and SSIM against the ground-truth frame, on the whole
  frame and on the **mouth box** (from the true landmarks: the lip landmarks' bounding box, widened by a
  margin) - the region a talking-head model must get right and a static image gets wrong.
* **Does it follow the driving landmarks?** MediaPipe is run on each generated frame (small frames are
  upscaled first: MediaPipe needs faces of a few hundred pixels) and the 468 found landmarks are compared
  with the driving ones. Frames where no face is found are **counted separately**, never silently
  dropped or scored as zero.

Every function takes uint8 RGB arrays ``(H, W, 3)`` / ``(N, H, W, 3)`` and landmarks in pixels of those
frames ``(468, 2)`` / ``(N, 468, 2)``. The "reference image unchanged" baseline is scored with the same
functions (pass the reference frame repeated N times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from aniportrait_lib.landmarks.connections import LIP_CHAINS

__all__ = [
    "MOUTH_LANDMARKS",
    "FrameScores",
    "detect_landmarks_px",
    "landmark_error",
    "mouth_box",
    "psnr",
    "score_frames",
    "ssim",
    "summarize_scores",
]

MOUTH_LANDMARKS: tuple[int, ...] = tuple(sorted({i for chain, _ in LIP_CHAINS for i in chain}))
"""The 40 lip landmarks of the official pose drawing (outer and inner lip contours)."""


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected two (H, W, 3) images of the same shape; got {a.shape} and {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(image: np.ndarray, truth: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two ``(H, W, 3)`` images; ``inf`` when they are identical."""
    a, b = _check_pair(image, truth)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(image: np.ndarray, truth: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004; 7×7 window, or the largest odd window that fits) over RGB channels."""
    a, b = _check_pair(image, truth)
    side = min(a.shape[:2])
    if side < 3:
        raise ValueError(f"SSIM needs images of at least 3×3 pixels; got {a.shape[:2]}")
    window = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=-1, win_size=window))


def mouth_box(lmks2d: np.ndarray, size: tuple[int, int], margin: float = 0.3, min_side: int = 8) -> tuple:
    """``(x0, y0, x1, y1)`` pixel box around the lip landmarks of ``(468+, 2)`` pixel landmarks.

    Args:
        size: (W, H) of the image; the box is clipped to it.
        margin: added on every side, as a fraction of the lips' width.
        min_side: the box is grown to at least this many pixels per side (SSIM needs a window).
    """
    points = np.asarray(lmks2d, dtype=np.float64)[list(MOUTH_LANDMARKS), :2]
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad = margin * (x1 - x0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max((x1 - x0) / 2 + pad, min_side / 2)
    half_h = max((y1 - y0) / 2 + pad, min_side / 2)
    width, height = size
    box = (
        int(np.clip(np.floor(cx - half_w), 0, width - 1)),
        int(np.clip(np.floor(cy - half_h), 0, height - 1)),
        int(np.clip(np.ceil(cx + half_w), 1, width)),
        int(np.clip(np.ceil(cy + half_h), 1, height)),
    )
    return box


def detect_landmarks_px(frame: np.ndarray, extractor, upscale_to: int = 256) -> np.ndarray:
    """MediaPipe's 468 landmarks of ``frame`` in its own pixels ``(468, 2)``; all NaN if no face is found.

    ``frame`` is upscaled (bicubic) so that its shorter side is at least ``upscale_to`` before detection.
    """
    height, width = frame.shape[:2]
    scale = max(1.0, upscale_to / min(height, width))
    big = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
    try:
        face = extractor.detect(big, "rgb")
    except ValueError:  # "no face found": counted by the caller, not an error of the metric
        return np.full((468, 2), np.nan)
    return face.lmks[:468, :2] * np.array([width, height])


def landmark_error(frame: np.ndarray, lmks2d: np.ndarray, extractor, upscale_to: int = 256) -> float:
    """Mean distance (pixels of ``frame``) between MediaPipe's 468 landmarks and ``lmks2d``; NaN if no face.

    Detection as :func:`detect_landmarks_px` (upscaled to ``upscale_to`` first).
    """
    found = detect_landmarks_px(frame, extractor, upscale_to)
    if np.isnan(found).any():
        return math.nan
    return float(np.linalg.norm(found - np.asarray(lmks2d)[:468, :2], axis=-1).mean())


@dataclass
class FrameScores:
    """Per-frame scores of N frames (arrays of shape ``(N,)``; ``landmark_px`` NaN where no face)."""

    psnr: np.ndarray
    ssim: np.ndarray
    mouth_psnr: np.ndarray
    mouth_ssim: np.ndarray
    landmark_px: np.ndarray


def score_frames(
    frames: np.ndarray, truth: np.ndarray, lmks2d: np.ndarray, extractor=None, upscale_to: int = 256
) -> FrameScores:
    """Score ``frames (N, H, W, 3)`` against ``truth`` frames and the driving ``lmks2d (N, 468, 2)`` pixels.

    Args:
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`; ``None`` skips the
            landmark metric (all NaN).
    """
    frames, truth = np.asarray(frames), np.asarray(truth)
    if frames.shape != truth.shape or len(lmks2d) != len(frames):
        raise ValueError(f"frames {frames.shape}, truth {truth.shape}, lmks2d {np.shape(lmks2d)} disagree")
    rows = []
    for frame, target, lmks in zip(frames, truth, lmks2d, strict=True):
        x0, y0, x1, y1 = mouth_box(lmks, (frame.shape[1], frame.shape[0]))
        mouth, mouth_truth = frame[y0:y1, x0:x1], target[y0:y1, x0:x1]
        landmark = landmark_error(frame, lmks, extractor, upscale_to) if extractor is not None else math.nan
        rows.append((psnr(frame, target), ssim(frame, target), psnr(mouth, mouth_truth),
                     ssim(mouth, mouth_truth), landmark))  # fmt: skip
    columns = np.array(rows, dtype=np.float64).reshape(len(rows), 5).T
    return FrameScores(*columns)


def summarize_scores(scores: FrameScores, max_db: float = 100.0) -> dict[str, float]:
    """Means over frames: PSNRs capped at ``max_db`` (identical frames), landmark error over frames with a
    face, and ``no_face_fraction`` - the share of frames where MediaPipe found no face."""
    found = np.isfinite(scores.landmark_px)
    return {
        "psnr": float(np.minimum(scores.psnr, max_db).mean()),
        "ssim": float(scores.ssim.mean()),
        "mouth_psnr": float(np.minimum(scores.mouth_psnr, max_db).mean()),
        "mouth_ssim": float(scores.mouth_ssim.mean()),
        "landmark_px": float(scores.landmark_px[found].mean()) if found.any() else math.nan,
        "no_face_fraction": float(1.0 - found.mean()) if len(found) else math.nan,
    }
