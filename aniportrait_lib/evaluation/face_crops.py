"""Face crops for the field's face metrics, made from MediaPipe landmarks instead of each metric's detector.

The published metrics each crop faces with their own detector: SyncNet's pipeline (LSE-C/D) with S3FD
face tracks, ArcFace (CSIM) with RetinaFace/SCRFD five-point alignment. The kit has one face model,
MediaPipe's FaceLandmarker (:class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`), so both crops
are rebuilt here from its 478 landmarks, following each reference's geometry:

* **SyncNet crop** (:func:`syncnet_face_crops`): joonson/syncnet_python ``run_pipeline.py`` ``crop_video``
  takes an S3FD box per frame, half-size ``s = max(w, h) / 2`` and centre ``(x, y)``, median-filters
  ``s``, ``x``, ``y`` over 13 frames, pads the frame by ``int(s * (1 + 2 * 0.4))`` pixels of value 110,
  cuts rows ``y - s … y + s (1 + 2 * 0.4)`` and columns ``x ± s (1 + 0.4)`` (a square of side 2.8 s
  reaching from the box's top to well below the chin) and resizes it to 224 × 224. Here the box is the
  bounding box of the 468 mesh landmarks (forehead to chin, cheek to cheek), which is taller than an
  S3FD box (S3FD's top sits near the brows), so the kit's crop is slightly larger and higher: LSE
  values measured with it are close to, not identical with, the published pipeline's.
* **ArcFace alignment** (:func:`align_to_arcface`): insightface ``face_align.norm_crop`` fits a
  similarity transform (``skimage.transform.SimilarityTransform``, here solved directly as linear least
  squares, :func:`similarity_matrix`) from five points — the two eye
  centres, the nose tip, the two mouth corners, in image left-to-right order — onto the 112 × 112
  template :data:`ARCFACE_TEMPLATE` and warps with ``cv2.warpAffine`` (bilinear, black border). The five
  points here are MediaPipe landmarks :data:`ARCFACE_POINTS`.

Landmarks in pixels are ``(F, 478, 2)`` float64 (x right, y down); frames without a face are NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import medfilt

from aniportrait_lib.landmarks.extract import N_MESH, LandmarkExtractor

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""insightface ``face_align.arcface_src``: where the five points land in the 112 × 112 crop (pixels)."""

ARCFACE_SIZE = 112
"""Side of the ArcFace input crop (insightface ``norm_crop`` image_size for mode "arcface")."""

ARCFACE_POINTS: tuple[int, ...] = (468, 473, 1, 61, 291)
"""MediaPipe landmarks standing in for the detector's five points, in template order: iris centre of the
subject's right eye (image left), iris centre of the left eye (image right), nose tip, mouth corner at
image left, mouth corner at image right."""


@dataclass(frozen=True)
class SyncNetCropConfig:
    """How :func:`syncnet_face_crops` cuts the face (defaults: syncnet_python ``run_pipeline.py``)."""

    crop_scale: float = 0.40
    """``--crop_scale``: the box half-size is extended by this fraction sideways and 2× it downwards."""
    smooth_frames: int = 13
    """``signal.medfilt`` kernel over the box size and centre (odd)."""
    pad_value: int = 110
    """Grey level of the padding outside the frame."""
    size: int = 224
    """Output side in pixels (SyncNet's lip branch takes 224 × 224)."""


def check_video(video: np.ndarray, where: str) -> np.ndarray:
    """``video`` as a (F, H, W, 3) uint8 array; ``ValueError`` naming ``where`` otherwise."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or len(video) == 0:
        raise ValueError(f"{where}: expected a (F, H, W, 3) uint8 RGB video, got {video.shape} {video.dtype}")
    return video


@contextmanager
def own_extractor(extractor: LandmarkExtractor | None) -> Iterator[LandmarkExtractor]:
    """Yield ``extractor``, or a new :class:`LandmarkExtractor` that is closed afterwards when it is None."""
    if extractor is not None:
        yield extractor
        return
    with LandmarkExtractor() as created:
        yield created


def video_landmarks_px(
    video: np.ndarray, extractor: LandmarkExtractor, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks of every frame of an RGB ``video`` (F, H, W, 3) uint8, in pixels.

    Returns:
        ``(lmks_px, found)``: (F, 478, 2) float64 pixels (NaN where no face) and (F,) bool.
    """
    video = check_video(video, where)
    result = extractor.detect_video(list(video), fps=25.0, channel_order="rgb")
    height, width = video.shape[1:3]
    lmks_px = result.lmks[..., :2].astype(np.float64) * np.array([width, height], np.float64)
    return lmks_px, result.found.copy()


def fill_missing(values: np.ndarray, found: np.ndarray, where: str) -> np.ndarray:
    """Linear interpolation over frames of (F, ...) ``values`` where ``found`` is False (edges held).

    ``ValueError`` naming ``where`` when no frame was found.
    """
    found = np.asarray(found, bool)
    if not found.any():
        raise ValueError(f"{where}: no face found in any frame")
    frames = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    filled = np.stack([np.interp(frames, frames[found], column[found]) for column in flat.T], axis=1)
    return filled.reshape(values.shape)


def syncnet_face_crops(
    video: np.ndarray, lmks_px: np.ndarray, config: SyncNetCropConfig = SyncNetCropConfig()
) -> np.ndarray:
    """Cut SyncNet's face crop from every frame, as syncnet_python's ``crop_video`` does (module docstring).

    Args:
        video: (F, H, W, 3) uint8 frames (any channel order; it is kept).
        lmks_px: (F, ≥468, 2) landmarks in pixels, without NaN (see :func:`fill_missing`).
        config: crop geometry.

    Returns:
        (F, size, size, 3) uint8 crops.
    """
    mesh = np.asarray(lmks_px, np.float64)[:, :N_MESH]
    low, high = mesh.min(axis=1), mesh.max(axis=1)  # (F, 2) box corners
    # medfilt zero-pads the ends like the reference; a kernel longer than the clip would make the median 0
    kernel = min(config.smooth_frames, len(mesh) - 1 + len(mesh) % 2)  # largest odd <= frames
    half = medfilt((high - low).max(axis=1) / 2, kernel)
    centre_x = medfilt((low[:, 0] + high[:, 0]) / 2, kernel)
    centre_y = medfilt((low[:, 1] + high[:, 1]) / 2, kernel)
    cs = config.crop_scale
    crops = []
    for frame, s, x, y in zip(video, half, centre_x, centre_y, strict=True):
        pad = int(s * (1 + 2 * cs))
        padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), constant_values=config.pad_value)
        my, mx = y + pad, x + pad
        face = padded[
            int(my - s) : int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)) : int(mx + s * (1 + cs))
        ]
        crops.append(cv2.resize(face, (config.size, config.size)))
    return np.stack(crops)


def arcface_five_points(lmks_px: np.ndarray) -> np.ndarray:
    """(..., 478, 2) landmarks in pixels → (..., 5, 2): the :data:`ARCFACE_POINTS`, in template order."""
    lmks_px = np.asarray(lmks_px, np.float64)
    if lmks_px.shape[-2] <= max(ARCFACE_POINTS):
        raise ValueError(f"expected (..., 478, 2) landmarks with irises, got {lmks_px.shape}")
    return lmks_px[..., ARCFACE_POINTS, :]


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``source``
    (N, 2) onto ``target`` (N, 2) → (2, 3) matrix for ``cv2.warpAffine``.

    With ``u = a x - b y + tx`` and ``v = b x + a y + ty`` the fit is linear in (a, b, tx, ty), so ordinary
    least squares gives the same optimum as Umeyama's method used by scikit-image.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    x, y = source[:, 0], source[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate([np.stack([x, -y, ones, zeros], 1), np.stack([y, x, zeros, ones], 1)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)
    if not np.isfinite([a, b, tx, ty]).all() or np.hypot(a, b) < 1e-9:
        raise ValueError(f"the points {np.round(source, 1).tolist()} do not define a similarity")
    return np.array([[a, -b, tx], [b, a, ty]])


def align_to_arcface(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Warp ``image`` (H, W, 3) uint8 so that its five ``points`` (5, 2) pixels land on
    :data:`ARCFACE_TEMPLATE` (as insightface ``norm_crop``) → (112, 112, 3) uint8."""
    matrix = similarity_matrix(points, ARCFACE_TEMPLATE)
    return cv2.warpAffine(image, matrix, (ARCFACE_SIZE, ARCFACE_SIZE), borderValue=0.0)
