"""Metric mesh and pose from landmarks (MediaPipe's geometry pipeline) against the official outputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aniportrait_lib.landmarks.camera import project_points_with_trans
from aniportrait_lib.landmarks.canonical_face import load_canonical_face
from aniportrait_lib.landmarks.face_geometry import estimate_face_geometry, weighted_procrustes
from aniportrait_lib.landmarks.model_file import ensure_face_landmarker_model


@pytest.fixture(scope="module")
def canonical():
    return load_canonical_face(ensure_face_landmarker_model())


def test_oracle_lmks_reproduce_lmks3d_and_trans_mat(lmk_oracle, canonical):
    lmks3d, trans_mat = estimate_face_geometry(lmk_oracle["lmks"], (512, 512), canonical)
    assert lmks3d.shape == (468, 3) and trans_mat.shape == (4, 4)
    err_mesh = np.abs(lmks3d - lmk_oracle["lmks3d"]).max()
    err_mat = np.abs(trans_mat - lmk_oracle["trans_mat"]).max()
    # measured: 1.3e-5 (mesh) and 3.5e-5 (matrix); MediaPipe computes in float32
    assert err_mesh < 1e-3, err_mesh
    assert err_mat < 1e-3, err_mat


def test_reprojected_mesh_lands_on_landmarks(lmk_oracle, canonical):
    lmks = lmk_oracle["lmks"]
    lmks3d, trans_mat = estimate_face_geometry(lmks, (512, 512), canonical)
    pixels = project_points_with_trans(lmks3d, trans_mat, (512, 512))
    assert np.abs(pixels - lmks[:468, :2] * 512).max() < 0.05


def test_non_square_image_keeps_reprojection(lmk_oracle, canonical):
    # the same normalised landmarks seen in a 640×480 image: reprojection must still match them
    lmks = lmk_oracle["lmks"].astype(np.float64)
    lmks3d, trans_mat = estimate_face_geometry(lmks, (640, 480), canonical)
    pixels = project_points_with_trans(lmks3d, trans_mat, (480, 640))
    assert np.abs(pixels - lmks[:468, :2] * [640, 480]).max() < 0.1


def test_rotation_is_orthonormal(lmk_oracle, canonical):
    _, trans_mat = estimate_face_geometry(lmk_oracle["lmks"], (512, 512), canonical)
    rotation = trans_mat[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-3)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-3)


def test_weighted_procrustes_recovers_similarity():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(40, 3))
    rotation = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    target = 1.7 * source @ rotation.T + [1.0, -2.0, 3.0]
    weights = rng.uniform(0.1, 1.0, 40)
    matrix = weighted_procrustes(source, target, weights)
    np.testing.assert_allclose(matrix[:3, :3], 1.7 * rotation, atol=1e-10)
    np.testing.assert_allclose(matrix[:3, 3], [1.0, -2.0, 3.0], atol=1e-10)


def test_weighted_procrustes_never_reflects():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(30, 3))
    mirrored = source * [-1, 1, 1]
    matrix = weighted_procrustes(source, mirrored, np.ones(30))
    assert np.linalg.det(matrix[:3, :3]) > 0
    with pytest.raises(ValueError, match="weights"):
        weighted_procrustes(source, source, np.zeros(30))


def test_rejects_too_few_landmarks(canonical):
    with pytest.raises(ValueError, match="landmarks"):
        estimate_face_geometry(np.zeros((100, 3)), (512, 512), canonical)
