"""Lmk2Video data from the mini corpus: datasets and evaluation clips cut the same face crop; evaluation
clips of a prepared dataset (its own held-out split, else the mini corpus's)."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip
from aniportrait_lib.data.manifest import (
    AUDIO_NAME,
    CLIPS_DIR,
    FRAMES_NAME,
    LANDMARKS_NAME,
    MANIFEST_NAME,
    ClipLandmarks,
    Manifest,
    PreparedDataset,
    write_audio,
    write_landmarks,
)
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.training.lmk2video_data import (
    ClipWindowDataset,
    FramePairDataset,
    evaluation_clips,
    heldout_clips,
    prepared_heldout_clips,
)
from aniportrait_lib.video_io import write_video

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


def _prepared_from_corpus(corpus, root, split: str):
    """The corpus's held-out clip written as a prepared dataset's clip (crop, 478 landmarks), in ``split``;
    no MediaPipe: its landmarks are the truth plus ten iris points."""
    spec = corpus.split("heldout")[0]
    frames, lmks = load_clip(corpus, spec.clip_id, SIZE, corpus_crop_box(corpus, 1.9))
    folder = root / CLIPS_DIR / spec.clip_id
    folder.mkdir(parents=True)
    write_video(folder / FRAMES_NAME, frames, 30)
    samples, rate = corpus.audio(spec.clip_id)
    write_audio(folder / AUDIO_NAME, samples, rate)
    count = len(frames)
    lmks478 = np.concatenate([lmks, lmks[:, :10]], axis=1)
    lmks478 = np.concatenate([lmks478, np.zeros((count, 478, 1), np.float32)], axis=2)
    write_landmarks(folder / LANDMARKS_NAME, ClipLandmarks(
        lmks478, np.zeros((count, 468, 3)), np.tile(np.eye(4), (count, 1, 1)), np.zeros((count, 51)),
        np.ones(count, bool), np.zeros(count, bool), np.arange(count),
    ))  # fmt: skip
    entry = {"id": spec.clip_id, "source": f"{spec.clip_id}.mp4", "status": "prepared", "split": split,
             "fps": 30.0, "n_frames": count, "image_size": SIZE, "has_audio": True}  # fmt: skip
    Manifest({"image_size": SIZE, "fps": 30.0}, [entry]).save(root / MANIFEST_NAME)
    return spec.clip_id, frames, lmks478


def test_a_prepared_dataset_is_evaluated_on_its_own_heldout_clips(corpus, tmp_path):
    clip_id, frames, lmks = _prepared_from_corpus(corpus, tmp_path / "data", "heldout")
    held = evaluation_clips(corpus, tmp_path / "data", SIZE, frames_per_clip=3, max_clips=2, consecutive=True)
    (clip,) = held.clips
    assert held.description.startswith("1 held-out clip(s) of") and str(tmp_path / "data") in held.description
    assert (
        isinstance(held.source, PreparedDataset) and held.source.audio(clip_id)[1] == corpus.audio(clip_id)[1]
    )
    assert clip.clip_id == clip_id and list(clip.frame_indices) == [1, 2, 3]
    np.testing.assert_array_equal(clip.lmks2d, lmks[1:4, :468, :2] * SIZE)  # the prepared landmarks
    np.testing.assert_array_equal(clip.poses[0], draw_landmarks((SIZE, SIZE), lmks[1, :, :2], normed=True))
    error = np.abs(clip.frames.astype(float) - frames[1:4]).mean()  # the crops, through H.264
    assert error < 4.0, error
    spread = prepared_heldout_clips(tmp_path / "data", SIZE, frames_per_clip=3, max_clips=1)[0]
    assert list(spread.frame_indices) == list(np.linspace(1, len(frames) - 1, 3).round().astype(int))


def test_without_heldout_clips_the_mini_corpus_scores_and_says_why(corpus, tmp_path):
    _prepared_from_corpus(corpus, tmp_path / "data", "train")
    held = evaluation_clips(corpus, tmp_path / "data", SIZE, frames_per_clip=3, max_clips=1, crop_scale=1.9)
    assert (
        held.source is corpus
        and "of the mini corpus" in held.description
        and "no 'heldout'" in held.description
    )
    reference = heldout_clips(corpus, SIZE, frames_per_clip=3, max_clips=1, crop_scale=1.9)[0]
    np.testing.assert_array_equal(held.clips[0].frames, reference.frames)
    with pytest.raises(ValueError, match="need 1000"):
        heldout_clips(corpus, SIZE, frames_per_clip=999, max_clips=1)
