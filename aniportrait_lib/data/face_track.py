"""One clip over time: a fixed frame rate, one stable square crop, and frames without a face.

Dataset preparation (:mod:`aniportrait_lib.data.prepare`) re-times every video to the dataset
frame rate (30 fps) by nearest timestamp (:func:`resample_frames`) and then needs two decisions
that the official repository leaves to the user (spec §1.4: its ``preprocess_dataset.py`` starts
from frames that are "already extracted/cropped"):

1. **The crop.** Training frames show the head and some shoulders, and the camera must not move
   with the face (a moving crop would teach the model a fake head motion). From landmarks on the
   full frames we take the median face height ``h`` and the range the face centre travels, and
   cut one square per clip::

       side   = scale · h  +  max(range of centre x, range of centre y)
       centre = middle of the centre's range, moved down by shift_down · h

   so in every frame the face keeps at least ``((scale − 1) / 2 − shift_down) · h`` of margin
   (0.35 h with the defaults; more below the chin). The box is shifted back inside the frame when
   it fits, otherwise padded (:func:`crop_frame`). A still portrait is cut the same way
   (:func:`portrait_crop_box`): the kit's Lmk2Video frames and the portraits it animates.

2. **Frames without a face.** :func:`split_segments` cuts a clip at gaps longer than
   ``max_gap`` frames and :func:`interpolate_gaps` fills the shorter gaps inside a segment
   linearly (head pose through its 6-vector, see :mod:`aniportrait_lib.landmarks.pose`).

All positions are in pixels of the frame the landmarks came from unless said otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np

from aniportrait_lib.landmarks.pose import matrices_to_poses, poses_to_matrices

LANDMARK_KEYS = ("lmks", "lmks3d", "trans_mat", "bs")
"""Per-frame arrays of :class:`~aniportrait_lib.landmarks.extract.VideoLandmarks` that are interpolated."""


@dataclass(frozen=True)
class CropConfig:
    """How the per-clip square crop is cut around the face."""

    scale: float = 1.9
    """Crop side / median face height (MediaPipe mesh, hairline to chin). The official training
    crops (VFHQ / CelebV-HQ, head + some shoulders) show the face at ~1/1.8–1/2.0 of the frame
    height; 1.9 is the middle."""
    shift_down: float = 0.1
    """Crop centre below the face centre, in face heights. The mesh stops at the hairline, so the
    head spans about [top − 0.3 h, chin + 0.5 h] with shoulders: its middle is 0.1 h below (kit choice)."""
    pad_mode: Literal["constant", "replicate"] = "constant"
    """How the part of a crop outside the frame is filled: black ("constant") or edge pixels."""


@dataclass(frozen=True)
class CropBox:
    """A square in source-frame pixels: columns ``[x0, x0 + side)``, rows ``[y0, y0 + side)``.

    ``x0`` / ``y0`` may be negative and the square may reach past the frame (then it is padded).
    """

    x0: int
    y0: int
    side: int

    @property
    def xyxy(self) -> list[int]:
        """``[x0, y0, x1, y1]`` (x1, y1 exclusive), the form stored in the manifest."""
        return [self.x0, self.y0, self.x0 + self.side, self.y0 + self.side]


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, stop)`` of a clip that become one prepared clip; both ends have a face."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def resample_frames(
    frames: Iterable[np.ndarray], source_fps: float, fps: float
) -> Iterator[tuple[int, np.ndarray]]:
    """Re-time a constant-rate stream to ``fps`` by nearest timestamp; yields (source index, frame).

    Output frame j (time j / fps) shows source frame ``round(j · source_fps / fps)`` (ties go to the
    earlier frame), so 15 → 30 fps doubles every frame and 60 → 30 keeps every other one. A source
    of N frames gives ``ceil(N · fps / source_fps)`` frames (same duration); lazy, one frame held.
    """
    if source_fps <= 0 or fps <= 0:
        raise ValueError(f"frame rates must be positive, got {source_fps} → {fps}")
    ratio = Fraction(source_fps).limit_denominator(1001) / Fraction(fps).limit_denominator(1001)
    j, last = 0, None
    for index, frame in enumerate(frames):
        while math.ceil(j * ratio - Fraction(1, 2)) <= index:
            yield index, frame
            j += 1
        last = (index, frame)
    if last is not None:
        while j < (last[0] + 1) / ratio:  # tail: keep the source's duration
            yield last
            j += 1


def face_boxes(lmks: np.ndarray, found: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Per-frame bounding boxes of the 478 landmarks.

    Args:
        lmks: (T, 478, 3) normalised landmarks (x, y in [0, 1]); NaN rows where no face.
        found: (T,) bool, frames that have a face.
        frame_size: (W, H) of the frames in pixels.

    Returns:
        (T, 4) float64 ``[x0, y0, x1, y1]`` in pixels; NaN rows where ``found`` is False.
    """
    boxes = np.full((len(found), 4), np.nan)
    if found.any():
        xy = lmks[found, :, :2].astype(np.float64) * np.asarray(frame_size, dtype=np.float64)
        boxes[found] = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
    return boxes


def _place(start: int, side: int, limit: int) -> int:
    """Shift a 1-D interval ``[start, start + side)`` inside ``[0, limit)`` when it fits."""
    if side <= limit:
        return int(np.clip(start, 0, limit - side))
    return start


def stable_crop_box(
    boxes: np.ndarray, frame_size: tuple[int, int], config: CropConfig = CropConfig(), where: str = "<clip>"
) -> CropBox:
    """One square crop for the whole clip (module docstring: side, centre, border rule).

    Args:
        boxes: (T, 4) face boxes from :func:`face_boxes` (NaN rows are ignored).
        frame_size: (W, H) of the frames in pixels.
        config: scale, downward shift and padding.
        where: clip name for the error message.

    Raises:
        ValueError: no frame has a face.
    """
    valid = boxes[np.isfinite(boxes).all(axis=1)]
    if len(valid) == 0:
        raise ValueError(f"no face found in any sampled frame of {where}")
    centres = (valid[:, :2] + valid[:, 2:]) / 2
    height = float(np.median(valid[:, 3] - valid[:, 1]))
    travel = centres.max(axis=0) - centres.min(axis=0)
    side = max(1, round(config.scale * height + travel.max()))
    cx, cy = (centres.max(axis=0) + centres.min(axis=0)) / 2
    cy += config.shift_down * height
    x0 = _place(round(cx - side / 2), side, frame_size[0])
    y0 = _place(round(cy - side / 2), side, frame_size[1])
    return CropBox(x0, y0, side)


def portrait_crop_box(lmks: np.ndarray, frame_size: tuple[int, int], crop_scale: float) -> CropBox:
    """The square face crop of a still portrait: :func:`stable_crop_box` of its one frame, side =
    ``crop_scale`` × face height (the crop of the kit's Lmk2Video frames and of a portrait to generate from).

    Args:
        lmks: (478 or 468, ≥2) normalised landmarks of the portrait.
        frame_size: (W, H) of the portrait in pixels.
    """
    lmks = np.asarray(lmks, dtype=np.float64)[None]
    boxes = face_boxes(lmks, np.ones(1, bool), frame_size)
    return stable_crop_box(boxes, frame_size, CropConfig(scale=crop_scale), where="the portrait")


def crop_frame(
    frame: np.ndarray, box: CropBox, size: int, pad_mode: Literal["constant", "replicate"] = "constant"
) -> np.ndarray:
    """Cut ``box`` out of ``frame`` (padding what lies outside) and resize it to ``size`` × ``size``.

    Args:
        frame: (H, W, 3) uint8.
        box: the square, in pixels of ``frame``.
        size: output side in pixels.
        pad_mode: "constant" (black) or "replicate" (edge pixels) outside the frame.

    Returns:
        (size, size, 3) uint8; area interpolation when shrinking, bilinear when enlarging.
    """
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box.xyxy
    inner = frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pads = (max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0))
    if any(pads):
        border = cv2.BORDER_CONSTANT if pad_mode == "constant" else cv2.BORDER_REPLICATE
        if inner.size == 0:  # the square lies entirely outside the frame
            inner, border = np.zeros((1, 1, 3), np.uint8), cv2.BORDER_CONSTANT
            pads = (0, box.side - 1, 0, box.side - 1)
        inner = cv2.copyMakeBorder(inner, *pads, border, value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    return cv2.resize(inner, (size, size), interpolation=interpolation)


def split_segments(found: np.ndarray, max_gap: int) -> list[Segment]:
    """Cut a clip into runs of frames with a face, bridging gaps of at most ``max_gap`` frames.

    Frames without a face before the first / after the last face of a segment are left out
    (nothing to interpolate from). Example: ``found = 1101111000011`` with ``max_gap = 2`` gives
    ``[Segment(0, 7), Segment(11, 13)]``.

    Args:
        found: (T,) bool.
        max_gap: longest run of faceless frames that is bridged (filled by interpolation).

    Returns:
        Segments in time order; empty if no frame has a face.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    known = np.flatnonzero(np.asarray(found, dtype=bool))
    if len(known) == 0:
        return []
    breaks = np.flatnonzero(np.diff(known) - 1 > max_gap)
    starts = np.concatenate([[known[0]], known[breaks + 1]])
    stops = np.concatenate([known[breaks], [known[-1]]]) + 1
    return [Segment(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _lerp_rows(values: np.ndarray, known: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Rows of ``values`` at ``missing`` indices, linearly interpolated between known neighbours."""
    right = np.searchsorted(known, missing)
    lo, hi = known[right - 1], known[right]
    weight = ((missing - lo) / (hi - lo)).reshape(-1, *([1] * (values.ndim - 1)))
    return (1 - weight) * values[lo] + weight * values[hi]


def _interpolate_matrices(mats: np.ndarray, known: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """(T, 4, 4) transforms at ``missing`` via their pose 6-vectors (angles take the short way round)."""
    poses = matrices_to_poses(mats[known])
    poses[:, :3] = np.rad2deg(np.unwrap(np.deg2rad(poses[:, :3]), axis=0))
    full = np.zeros((len(mats), 6))
    full[known] = poses
    return poses_to_matrices(_lerp_rows(full, known, missing))


def interpolate_gaps(
    arrays: dict[str, np.ndarray], found: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fill the faceless frames of one segment by linear interpolation between their neighbours.

    ``lmks``, ``lmks3d`` and ``bs`` are interpolated element-wise; ``trans_mat`` through its pose
    vector (euler xyz degrees + translation; :func:`~aniportrait_lib.landmarks.pose.matrix_to_pose`),
    which keeps the rotation block a rotation.

    Args:
        arrays: ``{"lmks": (T, 478, 3), "lmks3d": (T, 468, 3), "trans_mat": (T, 4, 4), "bs": (T, 51)}``
            with NaN rows where ``found`` is False.
        found: (T,) bool; the first and the last frame must have a face (see :func:`split_segments`).

    Returns:
        (new arrays of the same shapes and dtypes without NaN, ``interpolated`` (T,) bool).

    Raises:
        ValueError: the segment starts or ends without a face, or a key is missing.
    """
    found = np.asarray(found, dtype=bool)
    if len(found) == 0 or not (found[0] and found[-1]):
        raise ValueError("a segment must start and end with a face (use split_segments first)")
    missing_keys = set(LANDMARK_KEYS) - set(arrays)
    if missing_keys:
        raise ValueError(f"landmark arrays lack {sorted(missing_keys)}")
    known, missing = np.flatnonzero(found), np.flatnonzero(~found)
    filled = {key: np.array(arrays[key], copy=True) for key in LANDMARK_KEYS}
    if len(missing):
        for key in ("lmks", "lmks3d", "bs"):
            filled[key][missing] = _lerp_rows(filled[key].astype(np.float64), known, missing)
        filled["trans_mat"][missing] = _interpolate_matrices(filled["trans_mat"], known, missing)
    return filled, ~found
