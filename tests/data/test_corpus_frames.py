"""Mini-corpus clips as Lmk2Video sees them: face crops keep frames and landmarks aligned."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip

SIZE = 64


@pytest.fixture
def corpus(two_clip_corpus):
    return two_clip_corpus


def test_crop_box_frames_the_face_and_scales_with_crop_scale(corpus):
    source = corpus.config["image_size"]
    small, large = corpus_crop_box(corpus, 1.5), corpus_crop_box(corpus, 2.5)
    assert corpus_crop_box(corpus, None) is None
    assert small.side < large.side <= source
    xy = corpus.reference_lmks()[:, :2] * source
    for box in (small, large):  # the portrait's face lies inside both squares
        assert (xy >= [box.x0, box.y0]).all() and (xy < [box.x0 + box.side, box.y0 + box.side]).all()


def test_cropped_landmarks_follow_the_cropped_frames(corpus):
    clip_id = corpus.split("train")[0].clip_id
    whole, whole_lmks = load_clip(corpus, clip_id, SIZE)
    box = corpus_crop_box(corpus, 1.9)
    cropped, lmks = load_clip(corpus, clip_id, SIZE, box)
    assert cropped.shape == whole.shape and cropped.dtype == np.uint8
    # the face is larger in the crop: landmarks spread by source / side
    spread = np.ptp(lmks[0], axis=0) / np.ptp(whole_lmks[0], axis=0)
    np.testing.assert_allclose(spread, corpus.config["image_size"] / box.side, rtol=1e-5)
    # and the crop shows the face where its landmarks say: skin (bright) inside the face, not black padding
    centre = (lmks[0].mean(axis=0) * SIZE).astype(int)
    assert cropped[0, centre[1], centre[0]].mean() > 60
    # mapped back through the box, the landmarks are the truth in source pixels
    truth = corpus.truth(clip_id).lmks2d[0]
    np.testing.assert_allclose(lmks[0] * box.side + [box.x0, box.y0], truth, atol=1e-3)
