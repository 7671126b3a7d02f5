"""Audio2Lmk datasets: item shapes, audio/label alignment, cropping, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aniportrait_lib.audio.features import frame_count
from aniportrait_lib.data.audio_dataset import (
    AudioDatasetConfig,
    CorpusAudioDataset,
    align_labels,
    crop_item,
    make_clip,
)
from aniportrait_lib.data.mini_corpus import CorpusConfig, generate_mini_corpus
from aniportrait_lib.training.audio2lmk import collate


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """Two clips (one training, one held out) at 192 px: a few seconds to generate."""
    config = CorpusConfig(n_clips=2, image_size=192, heldout_every=2)
    return generate_mini_corpus(tmp_path_factory.mktemp("corpus") / "mini", config, workers=1)


def test_whole_clip_items_match_the_corpus_truth(tiny_corpus):
    dataset = CorpusAudioDataset(tiny_corpus, "train", AudioDatasetConfig(crop_frames=None))
    assert len(dataset) == 1
    item = dataset[0]
    samples, rate = tiny_corpus.audio(item["clip_id"])
    truth = tiny_corpus.truth(item["clip_id"])
    assert rate == 16000 and item["input_values"].shape == (len(samples),)
    assert item["seq_len"] == frame_count(len(samples))
    assert abs(item["seq_len"] - len(truth.offsets)) <= 1
    n = min(item["seq_len"], len(truth.offsets))
    np.testing.assert_array_equal(item["offsets"][:n].numpy(), truth.offsets[:n])
    np.testing.assert_array_equal(item["pose"][:n].numpy(), truth.pose[:n])
    values = item["input_values"].double()
    assert abs(values.mean()) < 1e-4 and abs(values.std() - 1) < 1e-3  # normalised like wav2vec2
    voice = dataset.specs[item["clip_id"]].voice
    assert item["style_id"] == list(tiny_corpus.config["voices"]).index(voice)


def test_crops_align_audio_and_labels_and_batch(tiny_corpus):
    dataset = CorpusAudioDataset(tiny_corpus, "heldout", AudioDatasetConfig(crop_frames=30))
    clip = dataset.clip(0)
    torch.manual_seed(0)
    items = [dataset[0] for _ in range(4)]
    batch = collate(items)
    assert batch["input_values"].shape == (4, 16000) and batch["seq_len"] == 30
    assert batch["offsets"].shape == (4, 30, 468, 3) and batch["pose"].shape == (4, 30, 6)
    for item in items:  # find the window start from the labels and check the audio matches it
        start = int(np.argmin([np.abs(clip.pose[s : s + 30] - item["pose"].numpy()).sum()
                               for s in range(clip.seq_len - 29)]))  # fmt: skip
        first = start * 16000 // 30
        np.testing.assert_array_equal(item["input_values"].numpy(), clip.input_values[first : first + 16000])


def test_short_clips_are_padded_with_silence_and_the_last_frame():
    clip = make_clip("c", np.random.default_rng(0).normal(size=8000), np.ones((15, 468, 3)),
                     np.arange(90.0).reshape(15, 6), 3, AudioDatasetConfig())  # fmt: skip
    item = crop_item(clip, 0, 30, AudioDatasetConfig().audio)
    assert item["input_values"].shape == (16000,) and torch.all(item["input_values"][8000:] == 0)
    assert torch.all(item["pose"][15:] == item["pose"][14]) and item["style_id"] == 3


def test_label_mismatch_beyond_one_frame_is_an_error():
    assert align_labels(np.zeros((11, 6)), 12, 1, "x").shape == (12, 6)
    assert align_labels(np.zeros((13, 6)), 12, 1, "x").shape == (12, 6)
    with pytest.raises(ValueError, match="clipA: 9 label frames"):
        align_labels(np.zeros((9, 6)), 12, 1, "clipA")
    with pytest.raises(ValueError, match="whole number of samples"):
        crop_item(make_clip("c", np.ones(6400), np.zeros((12, 468, 3)), np.zeros((12, 6)), 0,
                            AudioDatasetConfig()), 0, 10, AudioDatasetConfig().audio)  # fmt: skip


def test_prepared_dataset_adapter_gives_offsets_to_the_median_mesh(tmp_path, tiny_corpus):
    """A fake prepared dataset (manifest reader API) built from the corpus's truth."""
    from aniportrait_lib.data.audio_dataset import PreparedAudioDataset, neutral_offsets
    from aniportrait_lib.data.manifest import ClipLandmarks
    from aniportrait_lib.landmarks.pose import poses_to_matrices

    clip = tiny_corpus.split("train")[0]
    truth, reference = tiny_corpus.truth(clip.clip_id), tiny_corpus.reference()
    lmks3d = reference.lmks3d[None] + truth.offsets
    trans = reference.trans_mat[None] @ poses_to_matrices(truth.pose)
    n = len(lmks3d)

    class FakePrepared:
        root, config = tmp_path, {"fps": 30.0}

        def split(self, name):
            return [{"id": clip.clip_id, "has_audio": True}] if name == "train" else []

        def audio(self, clip_id):
            return tiny_corpus.audio(clip_id)

        def load_landmarks(self, clip_id):
            empty = np.zeros(n)
            return ClipLandmarks(empty, lmks3d, trans, empty, empty, empty, empty)

    dataset = PreparedAudioDataset(FakePrepared(), "train", AudioDatasetConfig(crop_frames=None))
    item = dataset[0]
    m = min(n, item["seq_len"])
    expected = neutral_offsets(lmks3d)
    np.testing.assert_allclose(item["offsets"][:m].numpy(), expected[:m], atol=1e-5)
    np.testing.assert_allclose(np.median(expected, axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(item["pose"][0].numpy(), 0, atol=1e-4)  # relative to the first frame
    np.testing.assert_allclose(item["pose"][:m, :3].numpy(), truth.pose[:m, :3] - truth.pose[0, :3], atol=0.2)
    with pytest.raises(ValueError, match="no prepared clips with audio"):
        PreparedAudioDataset(FakePrepared(), "heldout")
