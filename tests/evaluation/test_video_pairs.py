"""Pairing generated videos with a test set by stem (mp4 folders or a prepared dataset); decoding a pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clips_for_tables import SIZE, talking_frames, write_clip, write_sets  # tests/evaluation/, on the path

from aniportrait_lib.data.manifest import CLIPS_DIR, FRAMES_NAME, MANIFEST_NAME, Manifest
from aniportrait_lib.evaluation.video_pairs import VideoPair, find_pairs, load_pair
from aniportrait_lib.video_io import write_video


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    return write_sets(tmp_path_factory.mktemp("sets"))


def test_pairs_by_stem_and_suffix_with_the_speech_from_the_reference_track(sets):
    generated, reference = sets
    pairs = find_pairs(generated, reference, suffix="_gen")
    assert [(p.name, p.generated.name, p.reference.name) for p in pairs] == [
        ("clipA", "clipA_gen.mp4", "clipA.mp4"), ("clipB", "clipB_gen.mp4", "clipB.mp4"),
    ]  # fmt: skip
    assert [p.audio for p in pairs] == [p.reference for p in pairs]  # the reference mp4 carries the speech
    speech = generated.parent / "speech.wav"
    speech.write_bytes(b"")  # any file: pairing does not decode it
    assert all(p.audio == speech for p in find_pairs(generated, reference, speech, "_gen"))


def test_a_reference_clip_without_its_generated_video_is_named(sets):
    generated, reference = sets
    with pytest.raises(
        ValueError, match=r"no generated video for 2 reference clip\(s\): clipA.mp4, clipB.mp4"
    ):
        find_pairs(generated, reference)  # no suffix: clipA.mp4 is not there
    with pytest.raises(ValueError, match="missing_folder: the reference folder does not exist"):
        find_pairs(generated, reference.parent / "missing_folder")


def test_a_prepared_dataset_gives_its_heldout_clips(tmp_path, sets):
    generated, _ = sets
    root = tmp_path / "prepared"
    entries = []
    for clip_id, split in (("clipA", "heldout"), ("clipB", "train")):
        write_clip(root / CLIPS_DIR / clip_id / FRAMES_NAME, talking_frames(), audio=False)
        entries.append({"id": clip_id, "source": f"{clip_id}.mp4", "status": "prepared", "split": split,
                        "has_audio": False})  # fmt: skip
    Manifest({}, entries).save(root / MANIFEST_NAME)
    pairs = find_pairs(generated, root, suffix="_gen")
    assert [(p.name, p.reference) for p in pairs] == [("clipA", root / CLIPS_DIR / "clipA" / FRAMES_NAME)]
    assert pairs[0].audio is None  # neither the prepared clip nor the generated video has speech


def test_load_pair_cuts_to_the_common_length_and_resizes_the_reference(tmp_path):
    big = write_clip(tmp_path / "ref.mp4", talking_frames(6, size=96))
    small = write_clip(tmp_path / "gen.mp4", talking_frames(4), audio=False)
    loaded = load_pair(VideoPair("x", small, big, big))
    assert loaded.generated.shape == loaded.reference.shape == (4, SIZE, SIZE, 3)
    assert loaded.fps == pytest.approx(30.0) and loaded.audio.shape == (round(4 / 30 * 16_000),)
    assert load_pair(VideoPair("x", small, big), max_frames=2).generated.shape[0] == 2
    assert load_pair(VideoPair("x", small, big, big), speech=False).audio is None  # only LSE needs it


def test_a_reference_at_another_frame_rate_is_retimed_to_the_generated_one(tmp_path):
    frames = talking_frames(4)
    reference = write_video(tmp_path / "ref.mp4", frames, 15.0)  # every frame shown twice at 30 fps
    generated = write_clip(tmp_path / "gen.mp4", talking_frames(8), audio=False)
    loaded = load_pair(VideoPair("x", generated, reference))
    assert loaded.generated.shape[0] == loaded.reference.shape[0] == 8
    shown = [int(np.argmin([np.abs(f.astype(int) - g).mean() for g in frames])) for f in loaded.reference]
    assert shown == [0, 0, 1, 1, 2, 2, 3, 3]
