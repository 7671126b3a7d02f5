"""LMD: the mouth-landmark maths on synthetic arrays, then once through MediaPipe on the sample portrait."""

import cv2
import numpy as np
import pytest

from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.evaluation.lmd import lmd, mouth_landmark_distance
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.landmarks.mouth import LIP_VERTICES


def test_identical_landmarks_are_zero_apart_and_a_shift_by_d_is_d():
    rng = np.random.default_rng(0)
    lmks = rng.uniform(0, 512, (4, 478, 2))
    assert np.array_equal(mouth_landmark_distance(lmks, lmks), np.zeros(4))
    shifted = lmks + np.array([3.0, 4.0])  # a 3-4-5 triangle: every vertex moves 5 px
    np.testing.assert_allclose(mouth_landmark_distance(shifted, lmks), 5.0)


def test_only_lip_vertices_count_and_missing_faces_stay_nan():
    lmks = np.zeros((3, 478, 2))
    moved = lmks.copy()
    others = np.setdiff1d(np.arange(478), LIP_VERTICES)
    moved[:, others] = 100.0  # far away, but not on the lips
    moved[1, LIP_VERTICES[0]] = (40.0, 0.0)  # one of 40 lip vertices moves 40 px -> mean 1 px
    moved[2] = np.nan
    distance = mouth_landmark_distance(moved, lmks)
    assert distance[0] == 0 and distance[1] == pytest.approx(1.0) and np.isnan(distance[2])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        mouth_landmark_distance(np.zeros((2, 478, 2)), np.zeros((3, 478, 2)))


@pytest.fixture(scope="module")
def extractor():
    with LandmarkExtractor() as extractor:
        yield extractor


def test_lmd_through_mediapipe_on_the_portrait(extractor):
    portrait = load_portrait()
    still = np.stack([portrait, portrait])
    shift = np.float32([[1, 0, 6], [0, 1, 8]])  # 10 px to the right and down
    moved = cv2.warpAffine(portrait, shift, portrait.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    assert lmd([still], [still], extractor) == 0.0
    assert lmd([np.stack([moved, moved])], [still], extractor) == pytest.approx(10.0, abs=1.0)
    with pytest.raises(ValueError, match="lmd video pair 0: frame sizes differ"):
        lmd([still], [still[:, :256]], extractor)
