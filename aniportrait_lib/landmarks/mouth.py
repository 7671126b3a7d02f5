"""The mouth on the 468-vertex face mesh: the lip vertices and the mouth opening.

The one measure of how far the mouth is open, shared by the mini corpus's rig, the editor's expression
fields and the lip-sync metrics: the distance between the inner upper-lip midpoint (vertex 13) and the
inner lower-lip midpoint (vertex 14), on canonical meshes (T, 468, 3) or on image landmarks (T, 468, 2).
"""

from __future__ import annotations

import numpy as np

LIP_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
)  # fmt: skip
"""Outer lip contour: MediaPipe ``FACEMESH_LIPS`` outer ring (= official draw_util lip chains, spec §1.3)."""

LIP_INNER: tuple[int, ...] = (
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
)  # fmt: skip
"""Inner lip contour vertices: MediaPipe ``FACEMESH_LIPS`` inner ring (same source)."""

LIP_VERTICES: tuple[int, ...] = tuple(sorted(LIP_OUTER + LIP_INNER))
"""The 40 lip vertices of the 468-vertex mesh used by the lip vertex error."""

UPPER_LIP_INNER_MID = 13  # MediaPipe mesh: inner upper-lip midpoint (spec §1.3 chain "inner top" end)
LOWER_LIP_INNER_MID = 14  # MediaPipe mesh: inner lower-lip midpoint (spec §1.3 chain "inner bottom" end)


def mouth_opening(mesh: np.ndarray) -> np.ndarray:
    """(..., 468, 3) meshes or (..., 468, 2) image landmarks → (...) distance between the inner lip
    midpoints 13 and 14 (mesh units, or pixels for image landmarks)."""
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.ndim < 2 or mesh.shape[-2] != 468 or mesh.shape[-1] not in (2, 3):
        raise ValueError(f"expected (..., 468, 3) meshes or (..., 468, 2) landmarks, got {mesh.shape}")
    return np.linalg.norm(mesh[..., UPPER_LIP_INNER_MID, :] - mesh[..., LOWER_LIP_INNER_MID, :], axis=-1)
