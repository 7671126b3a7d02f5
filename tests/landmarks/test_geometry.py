"""Camera, projection and pose maths against the official ``pose_util.py`` oracle (atol 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.landmarks.camera import (
    perspective_matrix_flat,
    project_points,
    project_points_with_trans,
)
from aniportrait_lib.landmarks.pose import (
    matrices_to_poses,
    matrix_to_pose,
    pose_to_matrix,
    poses_to_matrices,
    relative_poses,
    smooth_pose_seq,
)

ATOL = 1e-4


def test_perspective_matrix_matches_official(lmk_oracle):
    flat = perspective_matrix_flat(1.0)
    assert flat.dtype == np.float32 and flat.shape == (16,)
    np.testing.assert_allclose(flat, lmk_oracle["perspective_matrix_flat"], atol=ATOL, rtol=0)
    assert flat[14] == pytest.approx(1 * 10000 / (1 - 10000), rel=1e-6)  # the n·f/(n−f) quirk


def test_perspective_matrix_aspect():
    wide = perspective_matrix_flat(16 / 9)
    assert wide[0] == pytest.approx(perspective_matrix_flat(1.0)[0] * 9 / 16, rel=1e-6)
    assert wide[5] == pytest.approx(-1 / np.tan(np.deg2rad(31.5)), rel=1e-6)


def test_project_points_with_trans_matches_official(lmk_oracle):
    pixels = project_points_with_trans(lmk_oracle["lmks3d"], lmk_oracle["trans_mat"], (512, 512))
    np.testing.assert_allclose(pixels, lmk_oracle["reprojected_lmks3d"], atol=ATOL, rtol=0)
    # and the reprojection sits on the image landmarks (spec §1.1: 0.016 px max)
    assert np.abs(pixels - lmk_oracle["lmks"][:468, :2] * 512).max() < 0.05


def test_project_points_matches_official(lmk_oracle):
    points = np.stack([lmk_oracle["lmks3d"]] * 3)
    pixels = project_points(points, lmk_oracle["trans_mat"], lmk_oracle["pose_vectors"], (512, 512))
    assert pixels.shape == (3, 468, 2)
    np.testing.assert_allclose(pixels, lmk_oracle["projected"], atol=ATOL, rtol=0)


def test_project_batch_length_mismatch_raises(lmk_oracle):
    with pytest.raises(ValueError, match="matrices"):
        project_points_with_trans(np.zeros((2, 5, 3)), np.stack([np.eye(4)] * 3), (64, 64))


def test_euler_and_translation_of_trans_mat(lmk_oracle):
    pose = matrix_to_pose(lmk_oracle["trans_mat"])
    np.testing.assert_allclose(pose[:3], lmk_oracle["euler_xyz_deg"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(pose[3:], lmk_oracle["translation"], atol=ATOL, rtol=0)


def test_pose_vectors_round_trip(lmk_oracle):
    poses = lmk_oracle["pose_vectors"]
    mats = poses_to_matrices(poses)
    assert mats.shape == (3, 4, 4)
    np.testing.assert_allclose(mats[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(matrices_to_poses(mats), poses, atol=1e-9)
    # extrinsic x→y→z: R = Rz · Ry · Rx
    rx, ry, rz = (pose_to_matrix(np.eye(6)[i] * 10)[:3, :3] for i in range(3))
    np.testing.assert_allclose(pose_to_matrix([10, 10, 10, 0, 0, 0])[:3, :3], rz @ ry @ rx, atol=1e-12)


def test_relative_poses_start_at_zero(lmk_oracle):
    mats = lmk_oracle["trans_mat"][None] @ poses_to_matrices(lmk_oracle["pose_vectors"])
    relative = relative_poses(mats)
    np.testing.assert_allclose(relative[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(relative, lmk_oracle["pose_vectors"], atol=1e-9)


@pytest.mark.parametrize("window", [3, 5, 7])
def test_smooth_pose_seq_matches_official(lmk_oracle, window):
    smoothed = smooth_pose_seq(lmk_oracle["smooth_in"], window)
    np.testing.assert_allclose(smoothed, lmk_oracle[f"smooth_w{window}"], atol=ATOL, rtol=0)


def test_smooth_pose_seq_clips_window_at_ends():
    seq = np.arange(5, dtype=float)[:, None]
    np.testing.assert_allclose(smooth_pose_seq(seq, 3)[:, 0], [0.5, 1, 2, 3, 3.5])
    with pytest.raises(ValueError):
        smooth_pose_seq(np.zeros(5), 3)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="shape"):
        pose_to_matrix(np.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        matrix_to_pose(np.eye(3))
