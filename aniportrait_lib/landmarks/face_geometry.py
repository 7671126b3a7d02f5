"""From image landmarks to a metric 3D face and its pose: MediaPipe's face-geometry pipeline.

MediaPipe's FaceLandmarker gives 478 *normalised* landmarks (x, y in [0, 1] of the image width /
height, z relative depth in units of the image width). Its "geometry pipeline" turns the first 468
into a metric mesh and a canonical→camera matrix; AniPortrait stores these as ``lmks3d`` and
``trans_mat``. MediaPipe 1.x exposes the matrix but not the mesh, so the kit recomputes both
here, following MediaPipe's published algorithm (``face_geometry/libs/geometry_pipeline.cc``):

1. **Screen → near plane.** Flip y (origin top-left) and scale x, y and z by the width / height of
   the camera frustum at the near plane (z like x). ``depth_offset`` = mean z.
2. **First scale.** Mirror z (screen z points away, camera z towards the viewer) and fit the
   canonical model to these points with a weighted orthogonal Procrustes fit; the fitted scale
   ``s1`` says how large the face is relative to the canonical model in near-plane units.
3. **Second scale.** Shift z so the face centre sits on the near plane, divide z by ``s1``,
   unproject x, y by the pinhole model (``x·z/near``), mirror z and fit again → ``s2``.
4. **Metric landmarks.** Repeat step 3 with ``s1·s2``: the points are now in camera space, metric.
5. **Pose.** ``trans_mat`` = Procrustes fit canonical → metric landmarks (rotation ≈ orthonormal,
   scale ≈ 1). ``lmks3d`` = metric landmarks mapped back by ``trans_mat⁻¹`` (a pose-free mesh).

The Procrustes fit uses only the 33 weighted landmarks of the canonical model's basis
(:mod:`.canonical_face`). MediaPipe computes in float32; this module in float64 (see the tests for
the measured difference to the official outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aniportrait_lib.landmarks.camera import DEFAULT_CAMERA, PerspectiveCamera
from aniportrait_lib.landmarks.canonical_face import CanonicalFace, load_canonical_face


@dataclass(frozen=True)
class Frustum:
    """Near-plane extent of the perspective camera for one image (MediaPipe ``PerspectiveCameraFrustum``)."""

    left: float
    right: float
    bottom: float
    top: float
    near: float

    @classmethod
    def for_image(cls, width: int, height: int, camera: PerspectiveCamera = DEFAULT_CAMERA) -> Frustum:
        """Frustum whose near-plane height is ``2·near·tan(fov/2)`` and width keeps the image aspect."""
        height_at_near = 2.0 * camera.near * np.tan(np.deg2rad(camera.vertical_fov_deg) / 2.0)
        width_at_near = width * height_at_near / height
        return cls(
            -width_at_near / 2, width_at_near / 2, -height_at_near / 2, height_at_near / 2, camera.near
        )


def weighted_procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Similarity transform (scale·rotation, translation) best mapping ``source`` onto ``target``.

    Minimises ``Σ w_i ‖s·R·source_i + t − target_i‖²`` with ``R`` a proper rotation (det = +1).

    Args:
        source, target: (N, 3) point sets in correspondence.
        weights: (N,) non-negative weights (at least one positive).

    Returns:
        (4, 4) float64 matrix ``[[s·R, t], [0, 0, 0, 1]]``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError("Procrustes weights must be non-negative with a positive sum")
    total = weights.sum()
    source_mean = weights @ source / total
    target_mean = weights @ target / total
    centred_source = source - source_mean
    cross = (target - target_mean).T @ (centred_source * weights[:, None])  # (3, 3)
    u, _, vt = np.linalg.svd(cross)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # avoid a reflection
        u[:, -1] *= -1
    rotation = u @ vt
    scale = np.sum((centred_source @ rotation.T) * target * weights[:, None])
    scale /= np.sum(centred_source * source * weights[:, None])
    matrix = np.eye(4)
    matrix[:3, :3] = scale * rotation
    matrix[:3, 3] = target_mean - scale * rotation @ source_mean
    return matrix


def _screen_to_near_plane(lmks: np.ndarray, frustum: Frustum) -> np.ndarray:
    """Step 1: normalised (N, 3) landmarks → near-plane units (y up, z scaled like x)."""
    points = np.array(lmks, dtype=np.float64)
    points[:, 1] = 1.0 - points[:, 1]
    x_scale, y_scale = frustum.right - frustum.left, frustum.top - frustum.bottom
    points *= np.array([x_scale, y_scale, x_scale])
    points[:, 0] += frustum.left
    points[:, 1] += frustum.bottom
    return points


def _to_metric(screen: np.ndarray, frustum: Frustum, depth_offset: float, scale: float) -> np.ndarray:
    """Steps 3–4: move z to the near plane, rescale, unproject x/y, mirror z (camera handedness)."""
    points = screen.copy()
    points[:, 2] = (points[:, 2] - depth_offset + frustum.near) / scale
    points[:, :2] *= points[:, 2:3] / frustum.near
    points[:, 2] *= -1.0
    return points


def _fit_scale(canonical: CanonicalFace, points: np.ndarray) -> float:
    """Scale of the Procrustes fit canonical → points (norm of the first column of s·R)."""
    matrix = weighted_procrustes(canonical.vertices, points, canonical.landmark_weights)
    return float(np.linalg.norm(matrix[:3, 0]))


def estimate_face_geometry(
    lmks: np.ndarray,
    image_size: tuple[int, int],
    canonical: CanonicalFace | None = None,
    camera: PerspectiveCamera = DEFAULT_CAMERA,
) -> tuple[np.ndarray, np.ndarray]:
    """Metric face mesh and pose from normalised landmarks (MediaPipe geometry pipeline).

    Args:
        lmks: (478, 3) or (468, 3) normalised landmarks as FaceLandmarker returns them (x, y in
            [0, 1] of width / height, z in units of the width); only the first 468 are used.
        image_size: (W, H) of the image the landmarks were found in, pixels.
        canonical: canonical face model; default read from the kit's ``face_landmarker.task``.

    Returns:
        ``(lmks3d, trans_mat)``: (468, 3) float64 pose-free metric mesh and (4, 4) float64
        canonical→camera matrix (the official ``lmks3d`` and ``trans_mat``).
    """
    canonical = canonical if canonical is not None else load_canonical_face()
    n_vertices = len(canonical.vertices)
    lmks = np.asarray(lmks, dtype=np.float64)
    if lmks.ndim != 2 or lmks.shape[1] != 3 or len(lmks) < n_vertices:
        raise ValueError(f"expected ({n_vertices}+, 3) normalised landmarks, got {lmks.shape}")
    frustum = Frustum.for_image(int(image_size[0]), int(image_size[1]), camera)
    screen = _screen_to_near_plane(lmks[:n_vertices], frustum)
    depth_offset = float(screen[:, 2].mean())
    first_scale = _fit_scale(canonical, screen * np.array([1.0, 1.0, -1.0]))
    second_scale = _fit_scale(canonical, _to_metric(screen, frustum, depth_offset, first_scale))
    metric = _to_metric(screen, frustum, depth_offset, first_scale * second_scale)
    trans_mat = weighted_procrustes(canonical.vertices, metric, canonical.landmark_weights)
    inverse = np.linalg.inv(trans_mat)
    lmks3d = metric @ inverse[:3, :3].T + inverse[:3, 3]
    return lmks3d, trans_mat
