"""Lmk2Video data from the mini corpus: datasets and evaluation clips cut the same face crop."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip
from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, FramePairDataset, heldout_clips

SIZE = 64


@pytest.fixture
def corpus(two_clip_corpus):
    return two_clip_corpus


def test_datasets_and_eval_clips_use_the_same_crop(corpus):
    pairs = FramePairDataset.from_corpus(corpus, SIZE, crop_scale=1.9)
    windows = ClipWindowDataset.from_corpus(corpus, SIZE, crop_scale=1.9, num_frames=4)
    clip_id = corpus.split("train")[0].clip_id
    frames, _ = load_clip(corpus, clip_id, SIZE, corpus_crop_box(corpus, 1.9))
    assert np.array_equal(pairs.source.all_frames[0], frames) and np.array_equal(
        windows.source.all_frames[0], frames
    )
    assert windows.num_frames == 4
    held = heldout_clips(corpus, SIZE, frames_per_clip=3, max_clips=1, crop_scale=1.9)[0]
    frames, lmks = load_clip(corpus, held.clip_id, SIZE, corpus_crop_box(corpus, 1.9))
    assert np.array_equal(held.ref_image, frames[0])
    np.testing.assert_allclose(held.lmks2d, lmks[held.frame_indices] * SIZE)
