"""Pose templates and frame-rate changes of per-frame motion."""

import numpy as np
import pytest

from aniportrait_lib.pipelines.motion_sources import as_pose_template, read_pose_template, resample_motion


def test_resampling_keeps_times_and_interpolates_linearly():
    values = np.arange(30, dtype=np.float64)[:, None] * np.ones((1, 6))  # value = source frame index
    assert np.array_equal(resample_motion(values, 30, 30, 30), values)
    half = resample_motion(values, 30, 15, 15)
    assert np.array_equal(half[:, 0], np.arange(0, 30, 2))  # 15 fps: every other 30 fps frame
    double = resample_motion(values, 30, 60, 60)
    assert np.allclose(double[:59, 0], np.arange(59) / 2)  # midpoints between frames
    assert double[-1, 0] == 29  # clamped to the last frame
    mesh = np.random.default_rng(0).normal(size=(10, 468, 3))
    assert resample_motion(mesh, 30, 25, 9).shape == (9, 468, 3)


def test_pose_templates_are_checked(tmp_path):
    good = np.zeros((4, 6))
    np.save(tmp_path / "t.npy", good)
    assert np.array_equal(read_pose_template(tmp_path / "t.npy"), good)
    assert as_pose_template(good).dtype == np.float64
    for bad in (np.zeros((4, 5)), np.zeros((0, 6)), np.full((3, 6), np.nan)):
        with pytest.raises(ValueError, match=r"\(T, 6\)|NaN"):
            as_pose_template(bad)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="junk.npy"):
        as_pose_template(tmp_path / "junk.npy")
