"""What notebook 06 checks of an edit: MediaPipe re-extracts the rendered frames, and the head must have
turned and the eyes closed as the edit document asked; plus the metrics it logs.

Retargeting, edits and rendering are :mod:`aniportrait_lib.editing`; this module only measures them.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from aniportrait_lib.data.face_rig import eye_aperture
from aniportrait_lib.data.render import Reference
from aniportrait_lib.evaluation.landmark_metrics import relative_poses_to
from aniportrait_lib.landmarks.performance import Performance

__all__ = ["EditCheck", "check_edit", "log_reenact_metrics", "plot_edit_check"]

YAW = 1  # index of the yaw (degrees) in a pose


@dataclass
class EditCheck:
    """An edited render against the unedited one, as MediaPipe sees them (:func:`check_edit`)."""

    yaw_before: np.ndarray  # (T,) re-extracted yaw of the unedited render, degrees relative to the target
    yaw_after: np.ndarray  # (T,) the same for the edited render
    yaw_asked: np.ndarray  # (T,) the edited performance's yaw: what the edit asked for
    fps: float
    blink_frame: int  # the frame the blink key closes the eyes at
    aperture_ratio: float  # re-extracted eye aperture at blink_frame, edited / unedited render
    mesh_ratio: float  # eye aperture of the edited mesh at blink_frame / the unedited mesh's (0 = shut)

    @property
    def full_turn(self) -> slice:
        """The last quarter of the frames, where the example edit's yaw turn is fully on."""
        return slice((3 * len(self.yaw_asked)) // 4, None)

    @property
    def yaw_change_deg(self) -> float:
        """Mean re-extracted yaw change, edited − unedited render, over :attr:`full_turn`."""
        return float(np.mean(self.yaw_after[self.full_turn] - self.yaw_before[self.full_turn]))


def check_edit(
    performance: Performance,
    edited: Performance,
    target: Reference,
    found_before,
    found_after,
    blink_frame: int,
) -> EditCheck:
    """Compare landmarks re-extracted from the unedited and the edited render of ``performance``.

    Args:
        target: the portrait rendered on; yaws are read relative to its own matrix ``trans_mat``.
        found_before / found_after: what :meth:`LandmarkExtractor.detect_video` found in the unedited /
            edited rendered frames (``trans_mat`` (T, 4, 4), ``lmks3d`` (T, 468, 3)).
        blink_frame: the frame where the edit closes the eyes.
    """
    before, after = np.asarray(found_before.lmks3d[blink_frame]), np.asarray(found_after.lmks3d[blink_frame])
    return EditCheck(
        yaw_before=relative_poses_to(target.trans_mat, found_before.trans_mat)[:, YAW],
        yaw_after=relative_poses_to(target.trans_mat, found_after.trans_mat)[:, YAW],
        yaw_asked=np.asarray(edited.pose)[:, YAW],
        fps=performance.fps,
        blink_frame=blink_frame,
        aperture_ratio=float(eye_aperture(after) / eye_aperture(before)),
        mesh_ratio=float(
            eye_aperture(edited.mesh[blink_frame]) / eye_aperture(performance.mesh[blink_frame])
        ),
    )


def plot_edit_check(check: EditCheck):
    """Re-extracted yaw of both renders, the asked yaw and the blink key over time → figure."""
    fig, ax = plt.subplots(figsize=(9, 3))
    t = np.arange(len(check.yaw_asked)) / check.fps
    ax.plot(t, check.yaw_before, label="re-extracted yaw, unedited render")
    ax.plot(t, check.yaw_after, label="re-extracted yaw, edited render")
    ax.plot(t, check.yaw_asked, "k:", lw=1, label="edited pose (what was asked)")
    ax.axvline(check.blink_frame / check.fps, color="tab:red", lw=0.8, label="blink key")
    ax.set(xlabel="time (s)", ylabel="yaw (°)")
    ax.legend(fontsize="small")
    return fig


METRICS = (  # name, direction, tolerance, unit, description
    ("official_roll_offset_deg", None, 0.0, "°",
     "mean |roll| the official transfer adds to the mirrored target (absolute rotation)"),
    ("reextracted_yaw_change_deg", "equal", 2.0, "°",
     "re-extracted yaw change where the +15° edit is fully on (warp stand-in under-turns a bit)"),
    ("blink_aperture_ratio_reextracted", "lower", 0.1, "",
     "re-extracted eye aperture at the blink key, edited / unedited render"),
    ("blink_aperture_ratio_mesh", "equal", 0.01, "",
     "eye aperture of the edited mesh at the blink key / unedited (0 = shut)"),
)  # fmt: skip
"""What notebook 06 logs; the baselines in ``baselines/*.json`` judge them by these names, directions and
tolerances."""


def log_reenact_metrics(run, official: Performance, check: EditCheck) -> dict[str, float]:
    """Log notebook 06's :data:`METRICS` with ``run.log_metric``
    (:class:`~aniportrait_lib.runner.notebook.NotebookRun`).

    Args:
        official: the performance retargeted with the official (absolute) rotation; its mean |roll| is
            what that transfer adds to the mirrored target (information only).
        check: the re-extraction of the unedited and edited renders.

    Returns:
        name → logged value.
    """
    values = {
        "official_roll_offset_deg": np.abs(np.asarray(official.pose)[:, 2]).mean(),
        "reextracted_yaw_change_deg": check.yaw_change_deg,
        "blink_aperture_ratio_reextracted": check.aperture_ratio,
        "blink_aperture_ratio_mesh": check.mesh_ratio,
    }
    return {
        name: run.log_metric(
            name, values[name], direction=direction, tolerance=tolerance, unit=unit, description=description
        )
        for name, direction, tolerance, unit, description in METRICS
    }
