"""Applying an edit document to a performance: per-frame control values → new mesh and pose.

Order (each step sees the previous one's result):

1. ``lipsync``: lower-face offsets from the neutral mesh × strength;
2. ``mouth``: mouth opening about the neutral opening × gain;
3. ``smile``; 4. ``blink`` / ``blink_left`` / ``blink_right`` (closures add, clipped to 1);
5. pose: ``pitch``/``yaw``/``roll`` are added to the pose's euler x/y/z (spec §1.2 convention,
   relative to the reference matrix), then ``scale`` brings the face closer to the camera along
   the line of sight through its centre (it looks ``scale`` × larger and stays where it was on
   screen), then ``x``/``y`` move the face's centre by x·W, y·H pixels at its depth. The result
   is again a rigid 6-vector pose.

A control that is neutral on every frame is skipped, so an edit never disturbs what it does not
name (a yaw key leaves the mesh bit-identical; a blink leaves the pose bit-identical).
"""

from __future__ import annotations

import numpy as np

from aniportrait_lib.editing.controls import CONTROLS
from aniportrait_lib.editing.edit_document import EditDocument
from aniportrait_lib.editing.face_regions import ExpressionConfig, ExpressionFields
from aniportrait_lib.landmarks.camera import perspective_matrix_flat
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.landmarks.pose import matrices_to_poses, poses_to_matrices

POSE_EULER_INDEX = {"pitch": 0, "yaw": 1, "roll": 2}
"""Which euler component of the pose vector each rotation control offsets (scipy 'xyz')."""


def _active(controls: dict[str, np.ndarray], names: tuple[str, ...]) -> bool:
    return any(np.any(controls[n] != CONTROLS[n].neutral) for n in names)


def edit_pose(performance: Performance, controls: dict[str, np.ndarray]) -> np.ndarray:
    """Edited poses (T, 6) from per-frame pose controls ``{name: (T,)}`` (see the module docstring).

    ``scale`` and ``x``/``y`` act on the face's centre (the mean of the frame's mesh): scaling
    keeps it where it is on screen while bringing it closer, and a shift moves it by exactly
    x·W, y·H pixels.
    """
    pose = np.array(performance.pose, dtype=np.float64)
    for name, index in POSE_EULER_INDEX.items():
        pose[:, index] += controls[name]
    if not _active(controls, ("x", "y", "scale")):
        return pose
    ref = np.asarray(performance.ref_trans_mat, np.float64)
    mats = ref[None] @ poses_to_matrices(pose)  # canonical → camera
    rotated_centre = np.einsum("tij,tj->ti", mats[:, :3, :3], np.asarray(performance.mesh).mean(axis=1))
    centre = (rotated_centre + mats[:, :3, 3]) / np.asarray(controls["scale"])[:, None]  # camera space
    width, height = performance.image_size
    flat = perspective_matrix_flat(width / height).astype(np.float64)
    w = flat[14] * centre[:, 2]  # homogeneous w of the centre (spec §1.2)
    centre[:, 0] += 2.0 * np.asarray(controls["x"]) * w / flat[0]
    centre[:, 1] += 2.0 * np.asarray(controls["y"]) * w / flat[5]
    mats[:, :3, 3] = centre - rotated_centre
    return matrices_to_poses(np.linalg.inv(ref)[None] @ mats)


def edit_mesh(
    performance: Performance, controls: dict[str, np.ndarray], fields: ExpressionFields | None = None
) -> np.ndarray:
    """Edited meshes (T, 468, 3) from per-frame expression controls ``{name: (T,)}``."""
    fields = fields or ExpressionFields(performance.ref_mesh)
    mesh = np.array(performance.mesh, dtype=np.float64)
    if _active(controls, ("lipsync",)):
        mesh = fields.lipsync(mesh, controls["lipsync"])
    if _active(controls, ("mouth",)):
        mesh = fields.mouth(mesh, controls["mouth"])
    if _active(controls, ("smile",)):
        mesh = fields.smile(mesh, controls["smile"])
    if _active(controls, ("blink", "blink_left", "blink_right")):
        right = np.clip(controls["blink"] + controls["blink_right"], 0.0, 1.0)
        left = np.clip(controls["blink"] + controls["blink_left"], 0.0, 1.0)
        mesh = fields.blink(mesh, right, left)
    return mesh


def check_controls(controls: dict[str, np.ndarray], n_frames: int) -> dict[str, np.ndarray]:
    """Fill missing controls with their neutral value and check every array is (T,) and finite."""
    unknown = set(controls) - set(CONTROLS)
    if unknown:
        raise ValueError(f"unknown edit control(s) {sorted(unknown)}: choose from {', '.join(CONTROLS)}")
    out = {}
    for name, control in CONTROLS.items():
        values = np.broadcast_to(np.asarray(controls.get(name, control.neutral), np.float64), (n_frames,))
        if not np.all(np.isfinite(values)):
            raise ValueError(f"edit control {name!r} has non-finite values")
        out[name] = values
    if np.any(out["scale"] <= 0):
        raise ValueError("edit control 'scale' must stay > 0")
    return out


def apply_controls(
    performance: Performance,
    controls: dict[str, np.ndarray | float],
    fields: ExpressionFields | None = None,
) -> Performance:
    """Apply per-frame control values (``{name: (T,) or scalar}``, missing = neutral)."""
    values = check_controls(controls, performance.n_frames)
    mesh = edit_mesh(performance, values, fields)
    pose = edit_pose(performance.with_arrays(mesh, performance.pose), values)
    return performance.with_arrays(mesh, pose)


def apply_edits(
    performance: Performance, document: EditDocument, config: ExpressionConfig | None = None
) -> Performance:
    """The performance with ``document``'s keyframed edits applied (same T, reference and fps)."""
    fields = ExpressionFields(performance.ref_mesh, config or ExpressionConfig())
    return apply_controls(performance, document.controls(performance.n_frames), fields)
