"""Notebook 06's library: reading an edit back from re-extracted landmarks, and the logged metrics."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from aniportrait_lib.data.face_rig import LEFT_EYE, RIGHT_EYE
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.landmarks.pose import poses_to_matrices
from aniportrait_lib.runner.notebook import start_notebook
from aniportrait_lib.studies.reenact_and_edit import check_edit, log_reenact_metrics, plot_edit_check

NOTEBOOK = "06_reenact_and_edit"
FRAMES, BLINK = 8, 2


def _performance(pose: np.ndarray, eye_gap: float) -> Performance:
    """A flat mesh whose eyelids are ``eye_gap`` cm apart, moving with ``pose``."""
    mesh = np.zeros((FRAMES, 468, 3))
    for eye in (RIGHT_EYE, LEFT_EYE):
        mesh[:, eye["upper"], 1] = eye_gap
    return Performance(mesh, pose, mesh[0], np.eye(4), 30.0, (64, 64))


def _yaw(degrees) -> np.ndarray:
    pose = np.zeros((FRAMES, 6))
    pose[:, 1] = degrees
    return pose


@pytest.fixture
def edit():
    """Before: still, eyes 1 cm open. After: yaw ramps to 15° (found: 80 % of it), eyes ¼ open at the blink
    (found: ½). The target's own yaw is 10°: every yaw is read relative to it."""
    performance, asked = _performance(_yaw(0.0), 1.0), np.linspace(0, 15, FRAMES)
    edited = _performance(_yaw(asked), 1.0)
    edited.mesh[BLINK] *= 0.25
    found_mesh = edited.mesh.copy()
    found_mesh[BLINK] *= 2.0
    target = SimpleNamespace(trans_mat=poses_to_matrices(_yaw(10.0)[:1])[0])
    found_before = SimpleNamespace(trans_mat=poses_to_matrices(_yaw(10.0)), lmks3d=performance.mesh)
    found_after = SimpleNamespace(trans_mat=poses_to_matrices(_yaw(10.0 + 0.8 * asked)), lmks3d=found_mesh)
    return performance, edited, check_edit(performance, edited, target, found_before, found_after, BLINK)


def test_the_check_reads_the_turn_and_the_blink(edit):
    performance, edited, check = edit
    np.testing.assert_allclose(check.yaw_before, 0.0, atol=1e-9)
    np.testing.assert_allclose(check.yaw_after, 0.8 * edited.pose[:, 1], atol=1e-9)
    assert check.full_turn == slice(6, None)  # the last quarter of 8 frames
    assert check.yaw_change_deg == pytest.approx(0.8 * edited.pose[6:, 1].mean())
    assert check.mesh_ratio == pytest.approx(0.25) and check.aperture_ratio == pytest.approx(0.5)
    fig = plot_edit_check(check)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 4 and ax.get_lines()[3].get_xdata()[0] == pytest.approx(BLINK / 30.0)
    plt.close(fig)


def test_metrics_values(edit, tmp_path):
    performance, edited, check = edit
    official = _performance(_yaw(0.0), 1.0)
    official.pose[:, 2] = np.linspace(-4, 4, FRAMES)
    logged = log_reenact_metrics(start_notebook(NOTEBOOK, "quick", tmp_path), official, check)
    assert logged["official_roll_offset_deg"] == pytest.approx(np.abs(np.linspace(-4, 4, FRAMES)).mean())
    assert logged["reextracted_yaw_change_deg"] == pytest.approx(check.yaw_change_deg)
    assert (logged["blink_aperture_ratio_reextracted"], logged["blink_aperture_ratio_mesh"]) == pytest.approx(
        (0.5, 0.25)
    )


@pytest.mark.parametrize("profile", ["quick", "cpu"])
def test_metrics_are_the_ones_the_baselines_judge(profile, check_against_baseline, edit, tmp_path):
    performance, _, check = edit
    run = start_notebook(NOTEBOOK, profile, tmp_path)
    logged = log_reenact_metrics(run, performance, check)
    check_against_baseline(run, logged, NOTEBOOK, profile)
