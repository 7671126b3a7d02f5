"""Face reenactment: move a reference portrait with the expressions and head motion of a source video.

**Official strategy** (``scripts/vid2vid.py``, spec §3.6), per source frame i with MediaPipe's
``lmks3d_i``, ``trans_mat_i = [R_i, t_i]`` and blendshapes ``bs_i``:

1. neutral frame ``k = argmin_i Σ bs_i`` (the frame with the least expression);
2. expression: ``mesh_i = lmks3d_i − lmks3d_k + ref_lmks3d``;
3. pose: euler angles of the **absolute** source rotation ``R_i``, translation
   ``t_i − t_0 + ref_t``; the 6-vectors are smoothed (centred window 3) and rebuilt into
   matrices (no scale);
4. the meshes are projected with those matrices (``project_points_with_trans``) at the source size.

Because the rotation is absolute, a source filmed off-axis (say its head turned 20° from the
camera) turns the reference's head by 20° too, even when the reference faces the camera.

**Relative option** (``rotation="relative"``, the kit's improvement): the source's rotation is
taken relative to its neutral frame and composed onto the reference's rotation in the head's
own frame, ``R'_i = R_ref · R_k⁻¹ · R_i``, and the translation is anchored at the same frame,
``t'_i = t_i − t_k + ref_t``. At the neutral frame the reference keeps exactly its own pose; a
nod of the source about its own x axis becomes a nod of the reference about its own x axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.landmarks.pose import matrices_to_poses, poses_to_matrices, smooth_pose_seq

RotationMode = Literal["absolute", "relative"]


@dataclass(frozen=True)
class RetargetConfig:
    """How a source's motion is transferred (defaults = official vid2vid)."""

    rotation: RotationMode = "absolute"
    """"absolute": the source's rotation as is (official); "relative": relative to the source's
    neutral frame, composed onto the reference's rotation (see the module docstring)."""
    smooth_window: int = 3
    """Centred moving-average window over the pose 6-vectors (official vid2vid: 3)."""


def neutral_frame(bs: np.ndarray) -> int:
    """Index of the frame with the smallest blendshape sum (official neutral frame), ``bs`` (T, 51)."""
    bs = np.asarray(bs, np.float64)
    if bs.ndim != 2 or len(bs) == 0:
        raise ValueError(f"blendshapes must be (T>0, 51), got {bs.shape}")
    return int(np.argmin(bs.sum(axis=1)))


def retarget_arrays(
    src_lmks3d: np.ndarray,
    src_trans_mat: np.ndarray,
    src_bs: np.ndarray,
    ref_lmks3d: np.ndarray,
    ref_trans_mat: np.ndarray,
    config: RetargetConfig = RetargetConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Retarget source arrays onto a reference.

    Args:
        src_lmks3d: (T, 468, 3) source canonical meshes.
        src_trans_mat: (T, 4, 4) source canonical→camera matrices.
        src_bs: (T, 51) source blendshapes.
        ref_lmks3d: (468, 3) reference mesh; ref_trans_mat: (4, 4) its matrix.

    Returns:
        ``mesh`` (T, 468, 3) and ``mats`` (T, 4, 4) canonical→camera matrices, float64.
    """
    lmks3d = np.asarray(src_lmks3d, np.float64)
    mats = np.asarray(src_trans_mat, np.float64)
    ref_mat = np.asarray(ref_trans_mat, np.float64)
    n = len(lmks3d)
    if lmks3d.shape[1:] != (468, 3) or mats.shape != (n, 4, 4) or np.shape(src_bs)[0] != n or n == 0:
        raise ValueError(
            f"source arrays disagree: lmks3d {lmks3d.shape}, trans_mat {mats.shape}, bs {np.shape(src_bs)}"
        )
    if not np.all(np.isfinite(lmks3d)) or not np.all(np.isfinite(mats)):
        raise ValueError("source arrays contain NaN (frames without a face): cut them first")
    k = neutral_frame(src_bs)
    mesh = lmks3d - lmks3d[k] + np.asarray(ref_lmks3d, np.float64)[None]
    if config.rotation == "absolute":
        rotations, anchor = mats[:, :3, :3], 0
    elif config.rotation == "relative":
        rotations, anchor = ref_mat[None, :3, :3] @ mats[k, :3, :3].T[None] @ mats[:, :3, :3], k
    else:
        raise ValueError(f"unknown rotation mode {config.rotation!r}: use 'absolute' or 'relative'")
    rebuilt = np.tile(np.eye(4), (n, 1, 1))
    rebuilt[:, :3, :3] = rotations
    rebuilt[:, :3, 3] = mats[:, :3, 3] - mats[anchor, :3, 3] + ref_mat[:3, 3]
    poses = smooth_pose_seq(matrices_to_poses(rebuilt), config.smooth_window)
    return mesh, poses_to_matrices(poses)


def retarget(
    source,
    reference,
    config: RetargetConfig = RetargetConfig(),
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
) -> Performance:
    """Retarget an extracted source video onto a reference portrait.

    Args:
        source: a :class:`~aniportrait_lib.landmarks.extract.VideoLandmarks` (``lmks3d``,
            ``trans_mat``, ``bs``, ``found``, ``fps``, ``image_size``). Like the official script,
            it is cut at its first frame without a face.
        reference: anything with ``lmks3d`` (468, 3) and ``trans_mat`` (4, 4): a
            :class:`~aniportrait_lib.data.render.Reference` or a ``FaceLandmarks``.
        fps, image_size: override the source's frame rate and (W, H) camera size.

    Returns:
        A :class:`Performance` whose pose is relative to the reference's matrix.
    """
    found = np.asarray(getattr(source, "found", np.ones(len(source.lmks3d), bool)))
    n = int(np.argmin(found)) if not found.all() else len(found)
    if n == 0:
        raise ValueError(f"no face in the first frame of {getattr(source, 'source', 'the source')}")
    mesh, mats = retarget_arrays(
        source.lmks3d[:n], source.trans_mat[:n], source.bs[:n], reference.lmks3d, reference.trans_mat, config
    )
    ref_mat = np.asarray(reference.trans_mat, np.float64)
    pose = matrices_to_poses(np.linalg.inv(ref_mat)[None] @ mats)
    size = image_size or tuple(source.image_size)
    return Performance(mesh, pose, np.asarray(reference.lmks3d, np.float64), ref_mat, fps or source.fps, size)
