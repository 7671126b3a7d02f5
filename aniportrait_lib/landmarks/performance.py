"""A performance: what the editor edits and the renderers draw.

AniPortrait's Audio2Lmk stage (and the vid2vid retargeting) ends with a canonical mesh and a head
pose per frame; the official code then projects them with the reference's camera matrix
(spec §1.2: ``M_t = ref_trans_mat · E(pose_t)``) and draws pose images. A :class:`Performance`
holds exactly those arrays, plus the neutral (reference) mesh that expression edits are measured
from, so every edit works on the 3D representation and is drawn by the official projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aniportrait_lib.landmarks.camera import project_points
from aniportrait_lib.landmarks.pose import poses_to_matrices


@dataclass(frozen=True)
class Performance:
    """T frames of face motion in the kit's glossary.

    ``image_size`` fixes the camera's aspect ratio (official projection at the source size);
    landmarks are normalised by it, so drawing them at another size is the official
    "draw at source size, then resize".
    """

    mesh: np.ndarray
    """(T, 468, 3) canonical mesh per frame (cm)."""
    pose: np.ndarray
    """(T, 6) pose relative to ``ref_trans_mat`` (euler xyz degrees, translation cm)."""
    ref_mesh: np.ndarray
    """(468, 3) neutral mesh (the reference portrait's ``lmks3d``): expression edits scale offsets from it."""
    ref_trans_mat: np.ndarray
    """(4, 4) the reference portrait's canonical→camera matrix."""
    fps: float
    """Frames per second."""
    image_size: tuple[int, int]
    """(W, H) pixels of the projection camera."""

    def __post_init__(self) -> None:
        mesh, pose = np.asarray(self.mesh), np.asarray(self.pose)
        if mesh.ndim != 3 or mesh.shape[1:] != (468, 3) or len(mesh) == 0:
            raise ValueError(f"Performance.mesh must be (T>0, 468, 3), got {mesh.shape}")
        if pose.shape != (len(mesh), 6):
            raise ValueError(f"Performance.pose must be ({len(mesh)}, 6) to match the mesh, got {pose.shape}")
        if np.shape(self.ref_mesh) != (468, 3) or np.shape(self.ref_trans_mat) != (4, 4):
            raise ValueError(
                f"Performance needs ref_mesh (468, 3) and ref_trans_mat (4, 4), got "
                f"{np.shape(self.ref_mesh)} and {np.shape(self.ref_trans_mat)}"
            )
        if not self.fps > 0 or len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(
                f"Performance needs fps > 0 and image_size (W, H), got {self.fps}, {self.image_size}"
            )

    @property
    def n_frames(self) -> int:
        return len(self.mesh)

    def matrices(self) -> np.ndarray:
        """(T, 4, 4) canonical→camera matrices ``ref_trans_mat · E(pose_t)``."""
        return np.asarray(self.ref_trans_mat, np.float64)[None] @ poses_to_matrices(self.pose)

    def landmarks_px(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """(T, 468, 2) landmarks in pixels of an image of ``size`` (W, H), default ``image_size``."""
        width, height = self.image_size
        px = project_points(self.mesh, self.ref_trans_mat, self.pose, (height, width))
        if size is None:
            return px
        return px / np.array([width, height]) * np.array(size, dtype=np.float64)

    def select(self, frames: slice | list[int] | np.ndarray) -> Performance:
        """The performance restricted to some frames (same reference, fps and size)."""
        return Performance(
            self.mesh[frames], self.pose[frames], self.ref_mesh, self.ref_trans_mat, self.fps, self.image_size
        )

    def with_arrays(self, mesh: np.ndarray, pose: np.ndarray) -> Performance:
        """A copy with new per-frame mesh (T', 468, 3) and pose (T', 6)."""
        return Performance(mesh, pose, self.ref_mesh, self.ref_trans_mat, self.fps, self.image_size)

    @classmethod
    def from_reference(cls, reference, offsets: np.ndarray, pose: np.ndarray, fps: float) -> Performance:
        """From a :class:`~aniportrait_lib.data.render.Reference` (or anything with ``image``,
        ``lmks3d``, ``trans_mat``), mesh offsets (T, 468, 3) from its mesh and poses (T, 6) relative
        to its matrix (the layout of the mini corpus's ``ClipTruth``)."""
        ref_mesh = np.asarray(reference.lmks3d, np.float64)
        height, width = reference.image.shape[:2]
        mesh = ref_mesh[None] + np.asarray(offsets, np.float64)
        return cls(
            mesh,
            np.asarray(pose, np.float64),
            ref_mesh,
            np.asarray(reference.trans_mat),
            fps,
            (width, height),
        )

    @classmethod
    def still(cls, reference, n_frames: int, fps: float = 30.0) -> Performance:
        """The reference's own face held still for ``n_frames`` (a blank canvas for editing)."""
        return cls.from_reference(reference, np.zeros((n_frames, 468, 3)), np.zeros((n_frames, 6)), fps)
