"""Pose templates (official ``generate_ref_pose.py`` maths)."""

from __future__ import annotations

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
from scipy.interpolate import interp1d

from aniportrait_lib.landmarks.pose import poses_to_matrices, relative_poses, smooth_pose_seq
from aniportrait_lib.landmarks.pose_template import (
    pose_template_from_matrices,
    pose_template_from_video,
    resample_linear,
    save_pose_template,
    usable_prefix,
)


def _wobbling_matrices(n: int) -> np.ndarray:
    t = np.arange(n)
    poses = np.stack(
        [5 * np.sin(t / 5), 10 * np.cos(t / 7), 2 * np.sin(t / 3), t * 0.01, -t * 0.02, -30 + 0 * t], 1
    )
    return poses_to_matrices(poses)


def test_resample_matches_interp1d():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 6))
    ours = resample_linear(values, 25.0, 30.0)
    assert ours.shape == (60, 6)
    old_t, new_t = np.linspace(0, 2.0, 50), np.linspace(0, 2.0, 60)
    reference = np.stack([interp1d(old_t, values[:, c])(new_t) for c in range(6)], 1)
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_template_from_matrices_is_official_recipe():
    mats = _wobbling_matrices(40)
    template = pose_template_from_matrices(mats, fps=24.0)
    assert template.dtype == np.float64 and template.shape == (int(40 * 30 / 24), 6)
    expected = smooth_pose_seq(resample_linear(relative_poses(mats), 24.0, 30.0), 5)
    np.testing.assert_allclose(template, expected, atol=1e-12)
    # same fps: no resampling, first raw pose is identity
    np.testing.assert_allclose(relative_poses(mats)[0], 0, atol=1e-9)
    assert pose_template_from_matrices(mats, fps=30.0).shape == (40, 6)


def test_template_input_checks(tmp_path):
    with pytest.raises(ValueError):
        pose_template_from_matrices(np.eye(4)[None], 30)
    with pytest.raises(ValueError, match="fps"):
        pose_template_from_matrices(_wobbling_matrices(5), 0)
    with pytest.raises(ValueError, match="frame 0"):
        usable_prefix(np.array([False, True]), "clip.mp4")
    assert usable_prefix(np.array([True, True, False, True]), "clip.mp4") == 2
    with pytest.raises(ValueError, match="bad.npy"):
        save_pose_template(tmp_path / "bad.npy", np.zeros((4, 5)))


def test_template_from_video(extractor, portrait_bgr, tmp_path):
    small = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    frames = []
    for angle in np.linspace(-8, 8, 15):
        matrix = cv2.getRotationMatrix2D((128, 128), float(angle), 1.0)
        frames.append(cv2.warpAffine(small, matrix, (256, 256), borderMode=cv2.BORDER_REFLECT))
    path = tmp_path / "turn.mp4"
    iio.imwrite(path, np.stack(frames), fps=15, codec="libx264", macro_block_size=16)
    template = pose_template_from_video(path, extractor)
    assert template.shape == (30, 6) and template.dtype == np.float64
    roll = template[:, 2]
    assert roll[-1] - roll[0] > 8  # in-plane rotation of 16° shows up on the z euler angle
    saved = save_pose_template(tmp_path / "out" / "pose_temp.npy", template)
    np.testing.assert_array_equal(np.load(saved), template)


def test_template_from_video_default_extractor_stops_at_missing_face(portrait_bgr, tmp_path):
    small = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    frames = np.stack([small] * 6 + [np.zeros_like(small)] * 3 + [small] * 3)
    path = tmp_path / "gap.mp4"
    iio.imwrite(path, frames, fps=30, codec="libx264", macro_block_size=16)
    template = pose_template_from_video(path)
    assert template.shape == (6, 6)  # stops before the first faceless frame, like the official script
    assert np.abs(template).max() < 0.5  # a still head: near-zero relative pose
