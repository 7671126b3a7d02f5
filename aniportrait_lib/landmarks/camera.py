"""The perspective camera of MediaPipe's geometry pipeline, and AniPortrait's projection to pixels.

MediaPipe's face-geometry "environment" is a pinhole camera with a vertical field of view of 63°,
near plane 1 and far plane 10000 (canonical-mesh units), looking down -z, with the image origin
at the top-left. AniPortrait builds the matching 16-float OpenGL-style matrix and projects
canonical 3D points into the image with it (official ``pose_util.py``), keeping two quirks that a
parity reimplementation must keep too:

* element [14] is ``n·f/(n−f)`` (OpenGL uses ``2·n·f/(n−f)``);
* the 16 floats are reshaped row-major and *transposed*, and points are row vectors, so the
  homogeneous ``w`` of a camera-space point ``c`` is ``c_z · n·f/(n−f) ≈ −1.0001·c_z`` rather than
  ``−c_z``. Pixels therefore differ from an ideal pinhole by 0.01 %.

Pixel convention: ``u = (x_ndc + 1)/2 · W``, ``v = (y_ndc + 1)/2 · H``, origin top-left, +v down
(the −f in element [5] flips y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aniportrait_lib.landmarks.pose import pose_to_matrix


@dataclass(frozen=True)
class PerspectiveCamera:
    """MediaPipe face-geometry camera (``geometry_pipeline_metadata`` environment, official defaults)."""

    vertical_fov_deg: float = 63.0
    """Vertical field of view in degrees (MediaPipe face-geometry environment)."""
    near: float = 1.0
    """Near clipping plane, canonical units (cm-like)."""
    far: float = 10000.0
    """Far clipping plane, canonical units."""

    @property
    def focal(self) -> float:
        """``f = 1 / tan(fov/2)`` ≈ 1.6319 for 63°."""
        return float(1.0 / np.tan(np.deg2rad(self.vertical_fov_deg) / 2.0))


DEFAULT_CAMERA = PerspectiveCamera()


def perspective_matrix_flat(aspect_ratio: float, camera: PerspectiveCamera = DEFAULT_CAMERA) -> np.ndarray:
    """The official 16-float perspective array (float32), as ``create_perspective_matrix`` builds it.

    Args:
        aspect_ratio: image width / height.

    Returns:
        (16,) float32 with [0] = f/a, [5] = −f, [10] = (n+f)/(n−f), [11] = −1, [14] = n·f/(n−f)
        and zeros elsewhere.
    """
    near, far = camera.near, camera.far
    flat = np.zeros(16, dtype=np.float32)
    flat[0] = camera.focal / aspect_ratio
    flat[5] = -camera.focal
    flat[10] = (near + far) / (near - far)
    flat[11] = -1.0
    flat[14] = near * far / (near - far)  # official quirk: not 2·n·f/(n−f)
    return flat


def _project_one(
    points: np.ndarray, model: np.ndarray, projection: np.ndarray, hw: tuple[int, int]
) -> np.ndarray:
    """Project (N,3) canonical points with a 4×4 model matrix; returns (N,2) pixels (u, v)."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)  # (N, 4) rows
    clip = homogeneous @ model.T @ projection  # row vectors: [p,1] · Mᵀ · P
    ndc = clip[:, :2] / clip[:, 3:4]
    height, width = hw
    return np.stack([(ndc[:, 0] + 1) * 0.5 * width, (ndc[:, 1] + 1) * 0.5 * height], axis=1)


def _projection(
    image_shape: tuple[int, int], camera: PerspectiveCamera
) -> tuple[np.ndarray, tuple[int, int]]:
    """The transposed 4×4 projection for an image of shape (H, W), and (H, W) as ints."""
    height, width = int(image_shape[0]), int(image_shape[1])
    return perspective_matrix_flat(width / height, camera).reshape(4, 4).T, (height, width)


def project_points_with_trans(
    points_3d: np.ndarray,
    trans_mats: np.ndarray,
    image_shape: tuple[int, int],
    camera: PerspectiveCamera = DEFAULT_CAMERA,
) -> np.ndarray:
    """Project canonical meshes with their own model matrices (official ``project_points_with_trans``).

    Args:
        points_3d: (L, N, 3) or (N, 3) canonical points (e.g. ``lmks3d``).
        trans_mats: (L, 4, 4) or (4, 4) canonical→camera matrices (e.g. ``trans_mat``).
        image_shape: (H, W) of the target image in pixels.

    Returns:
        (L, N, 2) or (N, 2) float64 pixel coordinates (u right, v down, origin top-left).
    """
    single = np.ndim(points_3d) == 2
    points = np.asarray(points_3d, dtype=np.float64).reshape(-1, *np.shape(points_3d)[-2:])
    mats = np.asarray(trans_mats, dtype=np.float64).reshape(-1, 4, 4)
    if len(mats) != len(points):
        raise ValueError(f"{len(points)} point sets but {len(mats)} matrices")
    projection, hw = _projection(image_shape, camera)
    out = np.stack([_project_one(p, m, projection, hw) for p, m in zip(points, mats, strict=True)])
    return out[0] if single else out


def project_points(
    points_3d: np.ndarray,
    ref_trans_mat: np.ndarray,
    pose_vectors: np.ndarray,
    image_shape: tuple[int, int],
    camera: PerspectiveCamera = DEFAULT_CAMERA,
) -> np.ndarray:
    """Project meshes under a reference matrix composed with per-frame poses (official ``project_points``).

    Frame i uses the model matrix ``ref_trans_mat · E(pose_vectors[i])`` where ``E`` builds a 4×4
    from (euler xyz degrees, translation), see :func:`aniportrait_lib.landmarks.pose.pose_to_matrix`.

    Args:
        points_3d: (L, N, 3) canonical points, one set per frame.
        ref_trans_mat: (4, 4) reference canonical→camera matrix.
        pose_vectors: (L, 6) poses (degrees, canonical units).
        image_shape: (H, W) in pixels.

    Returns:
        (L, N, 2) float64 pixels.
    """
    poses = np.asarray(pose_vectors, dtype=np.float64)
    mats = np.stack([np.asarray(ref_trans_mat, dtype=np.float64) @ pose_to_matrix(v) for v in poses])
    return project_points_with_trans(points_3d, mats, image_shape, camera)
