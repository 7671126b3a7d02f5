"""Head pose as AniPortrait encodes it: a 6-vector of euler angles (degrees) and a translation.

``pose = [rx, ry, rz, tx, ty, tz]`` with the rotation ``R = Rotation.from_euler("xyz", [rx, ry,
rz], degrees=True)`` (scipy, lowercase = *extrinsic* axes x then y then z) and ``t`` in canonical
mesh units (cm-like). A pose maps to the 4×4 matrix ``[[R, t], [0, 0, 0, 1]]``; AniPortrait's
Audio2Pose predicts these vectors and ``pose_template`` files store them (T, 6).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

EULER_ORDER = "xyz"
"""scipy euler sequence used by the official ``pose_util.py`` (extrinsic x→y→z)."""


def pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    """(6,) pose [euler xyz degrees, translation] → (4, 4) float64 rigid transform."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (6,):
        raise ValueError(f"a pose vector has shape (6,), got {pose.shape}")
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler(EULER_ORDER, pose[:3], degrees=True).as_matrix()
    matrix[:3, 3] = pose[3:]
    return matrix


def matrix_to_pose(matrix: np.ndarray) -> np.ndarray:
    """(4, 4) transform → (6,) pose [euler xyz degrees, translation].

    The 3×3 block is read by scipy as a rotation (it orthonormalises it if it is slightly off).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"a transform has shape (4, 4), got {matrix.shape}")
    euler = Rotation.from_matrix(matrix[:3, :3]).as_euler(EULER_ORDER, degrees=True)
    return np.concatenate([euler, matrix[:3, 3]])


def poses_to_matrices(poses: np.ndarray) -> np.ndarray:
    """(T, 6) poses → (T, 4, 4) transforms."""
    return np.stack([pose_to_matrix(p) for p in np.asarray(poses).reshape(-1, 6)])


def matrices_to_poses(matrices: np.ndarray) -> np.ndarray:
    """(T, 4, 4) transforms → (T, 6) poses."""
    return np.stack([matrix_to_pose(m) for m in np.asarray(matrices).reshape(-1, 4, 4)])


def relative_poses(matrices: np.ndarray) -> np.ndarray:
    """(T, 4, 4) canonical→camera matrices → (T, 6) poses of ``M_0⁻¹ · M_i`` (first frame = identity).

    This is how the official ``generate_ref_pose.py`` turns a video into a pose template.
    """
    mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 4, 4)
    first_inverse = np.linalg.inv(mats[0])
    return matrices_to_poses(first_inverse[None] @ mats)


def smooth_pose_seq(pose_seq: np.ndarray, window_size: int = 5) -> np.ndarray:
    """Centred moving average whose window is clipped at the ends (official ``smooth_pose_seq``).

    Output row i is the mean of rows ``[i − w//2, i + w//2] ∩ [0, T−1]``. Windows used by the
    official scripts: 5 (pose templates), 7 (Audio2Pose output), 3 (vid2vid).

    Args:
        pose_seq: (T, C) array, usually (T, 6) poses.
        window_size: odd window length in frames (an even one behaves like ``window_size + 1``).

    Returns:
        (T, C) float64.
    """
    seq = np.asarray(pose_seq, dtype=np.float64)
    if seq.ndim != 2 or window_size < 1:
        raise ValueError(f"expected (T, C) and window >= 1, got {seq.shape} and {window_size}")
    half = window_size // 2
    padded_cumsum = np.concatenate([np.zeros((1, seq.shape[1])), np.cumsum(seq, axis=0)])
    index = np.arange(len(seq))
    start, stop = np.maximum(index - half, 0), np.minimum(index + half + 1, len(seq))
    return (padded_cumsum[stop] - padded_cumsum[start]) / (stop - start)[:, None]
