"""Each edit control moves what it names and nothing else."""

import numpy as np
import pytest

from aniportrait_lib.data.face_rig import LEFT_EYE, RIGHT_EYE, eye_aperture
from aniportrait_lib.editing.edit_document import EditDocument
from aniportrait_lib.editing.edits import apply_controls, apply_edits
from aniportrait_lib.editing.face_regions import LEFT_EYE_CONTOUR, LIPS, RIGHT_EYE_CONTOUR
from aniportrait_lib.editing.preview import render_performance
from aniportrait_lib.evaluation.landmark_metrics import relative_poses_to
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.landmarks.mouth import mouth_opening

EYES = list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR)


def _edit(performance, name, value):
    return apply_edits(performance, EditDocument().with_key(name, 0, value))


def test_yaw_changes_only_the_pose(talking):
    edited = _edit(talking, "yaw", 15.0)
    np.testing.assert_array_equal(edited.mesh, talking.mesh)
    np.testing.assert_allclose(edited.pose[:, 1] - talking.pose[:, 1], 15.0)
    np.testing.assert_array_equal(edited.pose[:, [0, 2, 3, 4, 5]], talking.pose[:, [0, 2, 3, 4, 5]])


def test_blink_closes_the_eyes_and_moves_nothing_else(talking):
    edited = _edit(talking, "blink", 1.0)
    assert np.all(eye_aperture(edited.mesh) < 0.02 * eye_aperture(talking.mesh))
    np.testing.assert_array_equal(edited.pose, talking.pose)
    np.testing.assert_allclose(edited.mesh[:, list(LIPS)], talking.mesh[:, list(LIPS)], atol=1e-9)
    half = _edit(talking, "blink", 0.5)
    ratio = eye_aperture(half.mesh) / eye_aperture(talking.mesh)
    np.testing.assert_allclose(ratio, 0.5, atol=0.05)


def test_one_sided_blink_closes_one_eye(talking):
    edited = _edit(talking, "blink_left", 1.0)
    gap = lambda mesh, eye: mesh[:, eye["upper"], 1] - mesh[:, eye["lower"], 1]  # noqa: E731
    assert np.all(gap(edited.mesh, LEFT_EYE) < 0.02 * gap(talking.mesh, LEFT_EYE))
    np.testing.assert_allclose(gap(edited.mesh, RIGHT_EYE), gap(talking.mesh, RIGHT_EYE), atol=1e-9)


def test_mouth_gain_scales_the_opening_and_leaves_eyes_and_pose(talking):
    edited = _edit(talking, "mouth", 2.0)
    neutral = mouth_opening(talking.ref_mesh)
    np.testing.assert_allclose(
        mouth_opening(edited.mesh) - neutral, 2.0 * (mouth_opening(talking.mesh) - neutral), atol=0.02
    )
    np.testing.assert_allclose(edited.mesh[:, EYES], talking.mesh[:, EYES], atol=1e-9)
    np.testing.assert_array_equal(edited.pose, talking.pose)
    shut = _edit(talking, "mouth", 3.0)
    assert np.all(mouth_opening(shut.mesh) >= -1e-9)  # lips meet but never cross


def test_lipsync_scales_the_lower_face_offsets(talking):
    silent = _edit(talking, "lipsync", 0.0)
    lips = list(LIPS)
    np.testing.assert_allclose(
        silent.mesh[:, lips], np.broadcast_to(talking.ref_mesh[lips], silent.mesh[:, lips].shape)
    )
    np.testing.assert_allclose(silent.mesh[:, EYES], talking.mesh[:, EYES], atol=1e-12)
    double = _edit(talking, "lipsync", 2.0)
    offsets = talking.mesh[:, lips] - talking.ref_mesh[lips]
    np.testing.assert_allclose(double.mesh[:, lips] - talking.ref_mesh[lips], 2 * offsets, atol=1e-9)


def test_smile_lifts_and_widens_the_corners(talking):
    edited = _edit(talking, "smile", 1.0)
    moved = edited.mesh - talking.mesh
    right, left = 61, 291  # the subject's right corner has negative x
    assert moved[0, right, 0] < -0.3 and moved[0, left, 0] > 0.3
    assert moved[0, right, 1] > 0.4 and moved[0, left, 1] > 0.4
    np.testing.assert_allclose(moved[:, EYES], 0.0, atol=1e-4)
    np.testing.assert_array_equal(edited.pose, talking.pose)


def test_scale_and_shift_act_on_the_face_centre(talking):
    width, height = talking.image_size
    before = talking.landmarks_px()
    scaled = apply_controls(talking, {"scale": 1.5}).landmarks_px()
    spread = lambda px: np.linalg.norm(px - px.mean(axis=1, keepdims=True), axis=-1).mean(axis=1)  # noqa: E731
    np.testing.assert_allclose(spread(scaled) / spread(before), 1.5, rtol=0.03)
    np.testing.assert_allclose(scaled.mean(axis=1), before.mean(axis=1), atol=1.0)
    shifted = apply_controls(talking, {"x": 0.1, "y": -0.05}).landmarks_px()
    np.testing.assert_allclose((shifted - before).mean(axis=1), [[0.1 * width, -0.05 * height]] * 6, atol=0.5)
    np.testing.assert_array_equal(apply_controls(talking, {"x": 0.1}).mesh, talking.mesh)


def test_controls_are_checked(talking):
    with pytest.raises(ValueError, match="unknown edit control"):
        apply_controls(talking, {"jaw": 1.0})
    with pytest.raises(ValueError, match="'scale' must stay > 0"):
        apply_controls(talking, {"scale": 0.0})
    with pytest.raises(ValueError, match="non-finite"):
        apply_controls(talking, {"yaw": np.nan})


def test_yaw_key_is_seen_by_the_extractor_on_the_warped_preview(portrait, talking):
    """A +15° yaw keyframe → rendered with the warp stand-in → MediaPipe re-extracts ~15° more yaw."""
    still = talking.select([0, 0]).with_arrays(np.stack([talking.ref_mesh] * 2), np.zeros((2, 6)))
    edited = apply_edits(still, EditDocument().with_key("yaw", 0, 0.0, "linear").with_key("yaw", 1, 15.0))
    frames = render_performance(edited, portrait, "warp")
    with LandmarkExtractor() as extractor:
        mats = np.stack(
            [extractor.detect(f, "rgb", where=f"preview frame {i}").trans_mat for i, f in enumerate(frames)]
        )
    yaw = relative_poses_to(portrait.trans_mat, mats)[:, 1]
    assert abs(yaw[0]) < 1.0  # the unedited frame re-extracts as the portrait's own pose
    assert abs((yaw[1] - yaw[0]) - 15.0) <= 2.0, f"re-extracted yaw change {yaw[1] - yaw[0]:.2f}°"
