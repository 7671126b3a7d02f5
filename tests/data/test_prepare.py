"""Dataset preparation end to end on tiny synthetic videos built from ``data_samples/portrait.png``.

One session-scoped run (``prepared``, in ``conftest.py``) prepares the folder made by
``build_input_folder``; most tests inspect its output. The resume tests prepare a second, smaller
folder (``resume_input``) a few times. Sizes are tiny (256² sources, 128² crops, ≤ 50 frames) so
that the module runs in well under a minute on two busy cores.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aniportrait_lib.data import video_passes as prepare_module
from aniportrait_lib.data.face_track import resample_frames
from aniportrait_lib.data.manifest import (
    MANIFEST_NAME,
    Manifest,
    PreparedDataset,
    clip_ids,
    pose_images,
    split_of,
)
from aniportrait_lib.data.prepare import PrepareConfig, main, prepare_dataset
from aniportrait_lib.landmarks.drawing import draw_landmarks


@pytest.fixture(scope="module")
def dataset(prepared) -> PreparedDataset:
    return PreparedDataset(prepared[1])


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("source_fps", "n", "expected"),
    [
        (15, 3, [0, 0, 1, 1, 2, 2]),  # every frame twice
        (60, 7, [0, 2, 4, 6]),  # every other frame
        (30, 3, [0, 1, 2]),
        (25, 5, [0, 1, 2, 2, 3, 4]),  # 6 = ceil(5 · 30 / 25) frames, nearest timestamps
    ],
)
def test_resampling_picks_the_nearest_source_frame(source_fps, n, expected):
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(n)]
    out = list(resample_frames(frames, source_fps, 30))
    assert [index for index, _ in out] == expected
    assert all(frame[0, 0, 0] == index for index, frame in out)


def test_clip_ids_are_flat_safe_and_unique():
    ids = clip_ids(["a.mp4", "a.mkv", "x/y z.mov", "x/b.mp4"])
    assert ids == {"a.mp4": "a_mp4", "a.mkv": "a_mkv", "x/y z.mov": "x__y_z", "x/b.mp4": "x__b"}


def test_split_is_deterministic_and_near_the_requested_fraction():
    ids = [f"clip{i}" for i in range(2000)]
    splits = [split_of(i, 0.1, "salt") for i in ids]
    assert splits == [split_of(i, 0.1, "salt") for i in ids]
    assert 0.07 < splits.count("heldout") / len(ids) < 0.13
    assert splits != [split_of(i, 0.1, "other salt") for i in ids]


# ---------------------------------------------------------------- one full run


def test_every_source_is_prepared_or_skipped_with_a_reason(prepared, dataset):
    _, _, summary = prepared
    assert sorted(c["id"] for c in dataset.clips) == [
        "nested__deeper__leaves_part0", "nested__deeper__leaves_part1", "nested__gap", "talk",
    ]  # fmt: skip
    reasons = dict(summary.skipped)
    assert "empty" in reasons["empty"]
    assert "not a readable video" in reasons["broken"]
    assert "no face found" in reasons["noface"]
    assert "min_frames=8" in reasons["nested__deeper__leaves_part2"]
    assert summary.ignored_files == 1  # notes.txt
    text = str(summary)
    assert text.startswith("4 prepared, 4 skipped") and "noface: no face found" in text
    assert not (prepared[1] / ".work").exists()


def test_manifest_entries_describe_the_clips(dataset):
    talk = dataset.clip("talk")
    assert talk["source"] == "talk.mp4" and talk["fps"] == 30.0 and talk["source_fps"] == 25.0
    assert talk["n_frames"] == 29  # ceil(24 · 30 / 25)
    assert talk["duration"] == pytest.approx(29 / 30)
    x0, y0, x1, y1 = talk["crop_box"]
    assert x1 - x0 == y1 - y0 and 100 < x1 - x0 <= 256  # square, around a ~90 px face
    assert talk["split"] == split_of("talk", 0.05, "aniportrait")
    assert dataset.config["image_size"] == 128 and dataset.config["min_frames"] == 8
    in_splits = sorted(c["id"] for c in dataset.split("train") + dataset.split("heldout"))
    assert in_splits == sorted(c["id"] for c in dataset.clips)  # every clip in exactly one split


def test_landmarks_have_documented_shapes_and_follow_the_moving_face(dataset, talk_face_offsets):
    lm = dataset.load_landmarks("talk")
    t = len(lm)
    assert lm.lmks.shape == (t, 478, 3) and lm.lmks.dtype == np.float32
    assert lm.lmks3d.shape == (t, 468, 3) and lm.trans_mat.shape == (t, 4, 4) and lm.bs.shape == (t, 51)
    assert lm.found.all() and not lm.interpolated.any()
    xy = lm.lmks[..., :2]
    assert xy.min() > 0.1 and xy.max() < 0.9  # the whole face inside the crop, with margin, every frame
    height = np.median(xy[..., 1].max(axis=1) - xy[..., 1].min(axis=1))
    assert 0.4 < height < 0.6  # ≈ 1 / crop scale (1.9), minus the travel margin
    # the face moves in the crop exactly as it moved in the source (scaled by 128 / crop side)
    x0, _, x1, _ = dataset.clip("talk")["crop_box"]
    offsets = talk_face_offsets[lm.source_frames]
    expected = (offsets - offsets[0]) / (x1 - x0)
    measured = xy.mean(axis=1) - xy[0].mean(axis=0)
    np.testing.assert_allclose(measured, expected, atol=0.006)


def test_frames_are_the_cropped_video(dataset):
    frames = list(dataset.frames("talk"))
    assert len(frames) == 29 and frames[0].shape == (128, 128, 3)
    assert 60 < frames[0].mean() < 200  # a picture, not a black or grey pad


def test_audio_is_16k_mono_and_spans_the_clip(dataset):
    samples, rate = dataset.audio("talk")
    assert rate == 16000 and samples.ndim == 1
    assert abs(len(samples) / rate - 29 / 30) < 0.05
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * rate / len(samples) - 440) < 5  # the sine survived AAC + resampling
    assert dataset.clip("nested__gap")["has_audio"] is False
    assert "no audio track" in dataset.clip("nested__gap")["audio_note"]
    with pytest.raises(ValueError, match="nested__gap has no audio"):
        dataset.audio("nested__gap")


def test_short_gap_is_interpolated_and_flagged(dataset):
    lm = dataset.load_landmarks("nested__gap")
    assert np.flatnonzero(lm.interpolated).tolist() == [10, 11]  # the two grey frames
    assert np.array_equal(lm.interpolated, ~lm.found)
    for key in ("lmks", "lmks3d", "trans_mat", "bs"):
        assert np.isfinite(getattr(lm, key)).all(), key
    between = (lm.lmks[9] + lm.lmks[12]) / 2  # a static face: the filled rows sit between neighbours
    np.testing.assert_allclose(lm.lmks[10], between, atol=0.01)
    np.testing.assert_allclose(lm.trans_mat[10, :3, :3] @ lm.trans_mat[10, :3, :3].T, np.eye(3), atol=1e-9)


def test_long_gaps_split_the_clip_into_parts(dataset):
    part0, part1 = dataset.clip("nested__deeper__leaves_part0"), dataset.clip("nested__deeper__leaves_part1")
    assert part0["segment"][0] == 0 and part0["segment"][1] + 3 < part1["segment"][0]
    for part in (part0, part1):
        lm = dataset.load_landmarks(part["id"])
        assert len(lm) == part["n_frames"] == part["segment"][1] - part["segment"][0] >= 8
        assert part["track_frames"] == 46
        assert np.isfinite(lm.lmks).all()
        assert len(list(dataset.frames(part["id"]))) == part["n_frames"]
        np.testing.assert_array_equal(lm.source_frames, np.arange(*part["segment"]))  # 30 fps source
    dropped = next(c for c in dataset.skipped if c["id"] == "nested__deeper__leaves_part2")
    assert dropped["segment"][1] - dropped["segment"][0] < 8


def test_pose_images_are_drawn_from_the_stored_landmarks(dataset):
    images = dataset.pose_images("talk", [0, 7], size=96)
    assert images.shape == (2, 96, 96, 3) and images.dtype == np.uint8
    lm = dataset.load_landmarks("talk")
    np.testing.assert_array_equal(images[1], draw_landmarks((96, 96), lm.lmks[7], normed=True))
    assert images[0].max() > 0 and not np.array_equal(images[0], images[1])  # the face moved
    assert pose_images(lm, [], 32).shape == (0, 32, 32, 3)


def test_command_line_resumes_a_finished_dataset_without_redoing_it(prepared, capsys):
    source, out, _ = prepared
    before = (out / "clips" / "talk" / "landmarks.npz").stat().st_mtime_ns
    args = [str(source), str(out), "--size", "128", "--min-frames", "8", "--max-gap", "3", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "4 prepared, 4 skipped" in printed and "6 source(s) were already done" in printed
    assert (out / "clips" / "talk" / "landmarks.npz").stat().st_mtime_ns == before


def test_a_different_config_refuses_to_resume(prepared, small_config):
    source, out, _ = prepared
    with pytest.raises(ValueError, match="different config.*fps"):
        prepare_dataset(source, out, dataclasses.replace(small_config, fps=25.0))


# ---------------------------------------------------------------- interruption


def _manifest(out: Path) -> dict:
    payload = json.loads((out / MANIFEST_NAME).read_text())
    payload.pop("input_dir")
    return payload


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(
    resume_input, resume_reference, tmp_path, small_config, monkeypatch
):
    reference = resume_reference
    calls: list[str] = []
    real_write_parts = prepare_module.write_parts

    def killed_on_second(clip, *args, **kwargs):
        calls.append(clip.source)
        if clip.source == "b.mp4":
            raise KeyboardInterrupt  # the process dies in the middle of the second video
        return real_write_parts(clip, *args, **kwargs)

    out = tmp_path / "interrupted"
    monkeypatch.setattr(prepare_module, "write_parts", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(resume_input, out, small_config)
    assert calls == ["a.mp4", "b.mp4"]
    assert [c["id"] for c in _manifest(out)["clips"]] == ["a"]  # a is committed, b is not
    assert (out / ".work" / "b").is_dir()  # the half-made clip is only in the work folder
    first_done = (out / "clips" / "a" / "landmarks.npz").stat().st_mtime_ns

    monkeypatch.setattr(prepare_module, "write_parts", real_write_parts)
    summary = prepare_dataset(resume_input, out, small_config)
    assert summary.resumed == ["a.mp4"] and list(summary.seconds) == ["b.mp4"]
    assert (out / "clips" / "a" / "landmarks.npz").stat().st_mtime_ns == first_done
    assert not (out / ".work").exists()
    assert _manifest(out) == _manifest(reference)
    for clip_id in ("a", "b"):
        got, want = (
            PreparedDataset(out).load_landmarks(clip_id),
            PreparedDataset(reference).load_landmarks(clip_id),
        )
        for field in dataclasses.fields(got):
            np.testing.assert_array_equal(getattr(got, field.name), getattr(want, field.name))


def test_a_clip_with_missing_files_is_redone(resume_input, resume_reference, tmp_path, small_config):
    out = tmp_path / "out"
    shutil.copytree(resume_reference, out)
    (out / "clips" / "b" / "frames.mp4").unlink()
    summary = prepare_dataset(resume_input, out, small_config)
    assert summary.resumed == ["a.mp4"] and list(summary.seconds) == ["b.mp4"]
    assert (out / "clips" / "b" / "frames.mp4").is_file()


def test_tracking_mode_is_an_option_close_to_per_frame_detection(
    resume_input, resume_reference, tmp_path, small_config
):
    config = dataclasses.replace(small_config, running_mode="video")
    prepare_dataset(resume_input, tmp_path / "out", config)
    tracked = PreparedDataset(tmp_path / "out")
    assert tracked.config["running_mode"] == "video"
    per_frame = PreparedDataset(resume_reference).load_landmarks("a").lmks[..., :2]
    drift = np.abs(tracked.load_landmarks("a").lmks[..., :2] - per_frame).max() * 128
    assert 0 < drift < 10  # pixels of the 128² crop: really tracked, and close (extract.py: ≲ 10 px)


def test_a_skipped_source_is_kept_unless_retry_is_asked(resume_input, tmp_path, small_config):
    source = tmp_path / "in"
    source.mkdir()
    (source / "c.mp4").write_text("not yet a video")
    out = source / "prepared"  # inside the input folder: its own videos must not become sources
    assert [clip_id for clip_id, _ in prepare_dataset(source, out, small_config).skipped] == ["c"]
    (source / "c.mp4").write_bytes((resume_input / "b.mp4").read_bytes())  # the user fixes the file
    assert prepare_dataset(source, out, small_config).resumed == ["c.mp4"]  # the recorded skip stands
    summary = prepare_dataset(source, out, small_config, retry_skipped=True)
    assert summary.prepared == ["c"] and summary.skipped == []
    again = prepare_dataset(source, out, small_config)
    assert again.resumed == ["c.mp4"] and again.prepared == ["c"] and again.ignored_files == 0


@pytest.mark.parametrize(
    "change", [{"image_size": 127}, {"fps": 0}, {"min_frames": 0}, {"crop_detect_stride": 0}]
)
def test_invalid_config_is_refused(change):
    with pytest.raises(ValueError, match="invalid PrepareConfig: need"):
        PrepareConfig(**change)


def test_missing_input_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere is not a folder"):
        prepare_dataset(tmp_path / "nowhere", tmp_path / "out")


def test_commit_never_lets_two_sources_share_a_clip_id(tmp_path):
    manifest = Manifest({"fps": 30.0}, [])
    for source in ("x.mp4", "x_part0.mp4"):  # part 0 of x.mp4 and the file x_part0.mp4
        work = tmp_path / ".work" / source
        (work / "x_part0").mkdir(parents=True)
        (work / "x_part0" / "marker").write_text(source)
        manifest.commit(tmp_path, work, source, [{"id": "x_part0", "source": source, "status": "prepared"}])
    stored = Manifest.load(tmp_path / MANIFEST_NAME)
    assert stored.entries_for("x.mp4")[0]["status"] == "prepared"
    second = stored.entries_for("x_part0.mp4")[0]
    assert second["status"] == "skipped" and "already used by x.mp4" in second["reason"]
    assert (tmp_path / "clips" / "x_part0" / "marker").read_text() == "x.mp4"


def test_a_foreign_json_is_not_taken_for_a_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text('{"clips": []}')
    with pytest.raises(ValueError, match="is not the manifest of a prepared dataset"):
        PreparedDataset(tmp_path)
