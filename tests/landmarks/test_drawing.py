"""Pose images against the official ``FaceMeshVisualizer.draw_landmarks`` (pixel identity)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aniportrait_lib.landmarks.connections import (
    CUSTOM_FACE_OVAL,
    LIP_CHAINS,
    chain_edges,
    pose_image_edges,
)
from aniportrait_lib.landmarks.drawing import PoseDrawingConfig, draw_landmark_sequence, draw_landmarks


def test_ref_pose_is_pixel_identical(lmk_oracle):
    drawn = draw_landmarks((512, 512), lmk_oracle["lmks"], normed=True)
    assert drawn.shape == (512, 512, 3) and drawn.dtype == np.uint8
    equal = (drawn == lmk_oracle["ref_pose_drawn"]).all(axis=-1).mean()
    assert equal == 1.0, f"fraction of equal pixels {equal}"


def test_projected_poses_are_pixel_identical(lmk_oracle):
    drawn = draw_landmark_sequence((512, 512), lmk_oracle["projected"], normed=False)
    assert drawn.shape == (3, 512, 512, 3)
    np.testing.assert_array_equal(drawn, lmk_oracle["projected_drawn"])


def test_edge_table_matches_spec():
    edges = pose_image_edges()
    assert list(edges)[:26] == list(CUSTOM_FACE_OVAL)
    assert edges[(176, 149)] == (10, 200, 10)
    assert edges[(61, 146)] == (10, 180, 20) and edges[(13, 312)] == (150, 120, 100)
    assert len(edges) == 26 + 16 + 8 + 16 + 8 + sum(len(c) - 1 for c, _ in LIP_CHAINS)
    assert not any(a >= 468 or b >= 468 for a, b in edges)  # no irises by default
    assert chain_edges([1, 2, 3]) == [(1, 2), (2, 3)]


def test_study_options_add_irises_and_forehead(lmk_oracle):
    base = draw_landmarks((512, 512), lmk_oracle["lmks"], normed=True)
    irises = draw_landmarks((512, 512), lmk_oracle["lmks"], True, PoseDrawingConfig(irises=True))
    forehead = draw_landmarks((512, 512), lmk_oracle["lmks"], True, PoseDrawingConfig(forehead=True))
    assert (irises.any(-1) & ~base.any(-1)).sum() > 50  # iris rings are new pixels
    lmks = lmk_oracle["lmks"]
    top_of_head = int(lmks[10, 1] * 512)  # landmark 10 is the forehead top of the face oval
    assert (
        forehead[top_of_head - 2 : top_of_head + 3].any()
        and not base[top_of_head - 2 : top_of_head + 3].any()
    )


def test_out_of_range_landmark_drops_its_edges(lmk_oracle):
    lmks = lmk_oracle["lmks"].copy()
    lmks[152, 0] = 1.5  # chin point leaves the image: its two oval edges disappear
    with_chin = draw_landmarks((512, 512), lmk_oracle["lmks"], normed=True)
    without = draw_landmarks((512, 512), lmks, normed=True)
    x, y = (lmk_oracle["lmks"][152, :2] * 512).astype(int)
    assert with_chin[y - 1 : y + 2, x - 1 : x + 2].any() and not without[y - 1 : y + 2, x - 1 : x + 2].any()


def test_pixel_input_and_resize(lmk_oracle):
    pixels = lmk_oracle["lmks"][:, :2] * [256, 320]
    drawn = draw_landmarks((256, 320), pixels, normed=False)
    assert drawn.shape == (320, 256, 3)
    assert drawn.any()
    with pytest.raises(ValueError, match="landmarks"):
        draw_landmarks((512, 512), np.zeros((10, 2)))


def _contours(image: np.ndarray) -> int:
    """Number of 8-connected pieces of line in a pose image."""
    return cv2.connectedComponents((image.max(axis=-1) > 0).astype(np.uint8), connectivity=8)[0] - 1


def test_small_pose_images_keep_their_lines(lmk_oracle):
    """Below 512 px the kit averages (every contour stays whole, sub-pixel motion shows as intensity);
    the official bilinear resize samples the 2-px lines at a few points and breaks them into dashes."""
    lmks = lmk_oracle["lmks"]
    official = PoseDrawingConfig(resize="linear")
    canvas = draw_landmarks((512, 512), lmks, normed=True)
    assert np.array_equal(canvas, draw_landmarks((512, 512), lmks, normed=True, config=official))
    kit = draw_landmarks((96, 96), lmks, normed=True)
    assert _contours(kit) <= _contours(canvas)  # (nearby contours may merge at 96 px)
    assert _contours(draw_landmarks((96, 96), lmks, normed=True, config=official)) > 2 * _contours(canvas)
    shifted = lmks.copy()
    shifted[:, 1] += 0.4 / 96  # every landmark moved by 0.4 output pixel
    change = np.abs(draw_landmarks((96, 96), shifted, normed=True).astype(int) - kit)
    assert change.mean() > 0 and change.max() < 128  # a shift in intensity, no line jumping in or out
    with pytest.raises(ValueError, match="resize"):
        draw_landmarks((96, 96), lmks, normed=True, config=PoseDrawingConfig(resize="cubic"))
