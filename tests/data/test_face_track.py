"""Crop geometry, gap splitting and interpolation (:mod:`aniportrait_lib.data.face_track`, no MediaPipe)."""

import numpy as np
import pytest

from aniportrait_lib.data.face_track import (
    CropBox,
    CropConfig,
    Segment,
    crop_frame,
    face_boxes,
    interpolate_gaps,
    split_segments,
    stable_crop_box,
)
from aniportrait_lib.landmarks.pose import matrices_to_poses, poses_to_matrices


def _boxes(centres, height=40.0):
    """(T, 4) square face boxes of side ``height`` around (T, 2) centres."""
    centres = np.asarray(centres, dtype=float)
    return np.concatenate([centres - height / 2, centres + height / 2], axis=1)


def test_face_boxes_are_landmark_extents_in_pixels():
    lmks = np.full((2, 478, 3), np.nan, np.float32)
    lmks[0, :, :2] = np.random.default_rng(0).uniform(0.25, 0.5, (478, 2))
    lmks[0, 0, :2], lmks[0, 1, :2] = (0.25, 0.25), (0.5, 0.5)
    boxes = face_boxes(lmks, np.array([True, False]), (200, 100))
    np.testing.assert_allclose(boxes[0], [50, 25, 100, 50], atol=1e-4)
    assert np.isnan(boxes[1]).all()


def test_crop_side_is_scale_times_face_height_plus_travel():
    config = CropConfig(scale=2.0, shift_down=0.1)
    still = stable_crop_box(_boxes([[100, 100]] * 3), (400, 400), config)
    assert still.side == 80 and (still.x0, still.y0) == (60, 64)  # centre moved down 0.1 · 40 px
    moving = stable_crop_box(_boxes([[100, 100], [130, 110]]), (400, 400), config)
    assert moving.side == 80 + 30  # the face centre travels 30 px in x
    assert moving.x0 + moving.side / 2 == pytest.approx(115, abs=1)


def test_crop_is_shifted_inside_the_frame_when_it_fits_and_padded_otherwise():
    near_edge = stable_crop_box(_boxes([[15, 50]]), (200, 200), CropConfig(scale=2.0, shift_down=0.0))
    assert near_edge == CropBox(0, 10, 80)  # moved right into the frame, not padded
    too_big = stable_crop_box(_boxes([[50, 50]], height=60), (100, 100), CropConfig(scale=2.0, shift_down=0))
    assert too_big == CropBox(-10, -10, 120)
    frame = np.full((100, 100, 3), 200, np.uint8)
    out = crop_frame(frame, too_big, 60)
    assert out.shape == (60, 60, 3)
    assert out[0, 0].max() == 0 and out[30, 30].min() == 200  # black border, image inside


def test_crop_frame_takes_the_right_pixels():
    frame = np.zeros((50, 80, 3), np.uint8)
    frame[10:30, 40:60] = 255
    out = crop_frame(frame, CropBox(40, 10, 20), 20)
    assert out.min() == 255
    replicated = crop_frame(frame, CropBox(70, 40, 20), 20, pad_mode="replicate")
    assert replicated.shape == (20, 20, 3) and replicated.max() == 0


def test_split_segments_bridges_short_gaps_only():
    found = np.array([1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1], dtype=bool)
    assert split_segments(found, max_gap=2) == [Segment(0, 7), Segment(11, 13)]
    assert split_segments(found, max_gap=4) == [Segment(0, 13)]
    assert split_segments(np.array([0, 0, 1, 1, 0], dtype=bool), 5) == [Segment(2, 4)]  # ends trimmed
    assert split_segments(np.zeros(4, bool), 5) == []


def test_interpolation_is_exact_for_linear_motion_and_flags_the_frames():
    t = np.arange(6, dtype=np.float64)
    truth = {
        "lmks": (np.ones((6, 478, 3)) * t[:, None, None]).astype(np.float32),
        "lmks3d": np.ones((6, 468, 3)) * 2 * t[:, None, None],
        "bs": (np.ones((6, 51)) * t[:, None] / 10).astype(np.float32),
        # yaw goes 170 → 195 (= -165): the short way round passes 180, not 0
        "trans_mat": poses_to_matrices(np.stack([[0, 0, 170 + 5 * s, s, 0, -30] for s in t])),
    }
    found = np.array([1, 0, 0, 1, 1, 1], dtype=bool)
    holes = {key: value.copy() for key, value in truth.items()}
    for value in holes.values():
        value[~found] = np.nan
    filled, interpolated = interpolate_gaps(holes, found)
    np.testing.assert_array_equal(interpolated, ~found)
    for key in ("lmks", "lmks3d", "bs"):
        assert filled[key].dtype == truth[key].dtype
        np.testing.assert_allclose(filled[key], truth[key], rtol=1e-6)
    np.testing.assert_allclose(filled["trans_mat"], truth["trans_mat"], atol=1e-9)
    yaw = matrices_to_poses(filled["trans_mat"])[:, 2]
    assert abs(abs(yaw[2]) - 180) < 1e-6  # 170 + 10


def test_interpolation_refuses_a_segment_that_starts_without_a_face():
    arrays = {"lmks": np.zeros((2, 478, 3)), "lmks3d": np.zeros((2, 468, 3)),
              "trans_mat": np.tile(np.eye(4), (2, 1, 1)), "bs": np.zeros((2, 51))}  # fmt: skip
    with pytest.raises(ValueError, match="start and end with a face"):
        interpolate_gaps(arrays, np.array([False, True]))
