"""Sharded preparation: ``--shard I/N`` on N machines, then ``merge``, equals one unsharded run.

The input folder and the unsharded run are ``conftest.py``'s session fixtures (``prepared``); this
module prepares the same folder as shards 0/2 and 1/2 once and merges them. The refusal tests work
on copies of those shard folders, or on fake shards made of small text files (no video at all).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aniportrait_lib.data import video_passes as prepare_module
from aniportrait_lib.data.manifest import (
    MANIFEST_NAME,
    Manifest,
    PreparedDataset,
    Shard,
    clip_files,
    shard_of,
)
from aniportrait_lib.data.prepare import main, merge_shards, prepare_dataset
from aniportrait_lib.data.shards import load_shard

CLI_OPTIONS = ["--size", "128", "--min-frames", "8", "--max-gap", "3", "--no-progress"]
"""``small_config`` as command-line options."""


def manifest_payload(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text())


@pytest.fixture(scope="module")
def shard_dirs(prepared, tmp_path_factory, small_config) -> list[Path]:
    """Folders of shards 0/2 (through the Python API) and 1/2 (through the command line)."""
    source, _, _ = prepared
    root = tmp_path_factory.mktemp("shards")
    prepare_dataset(source, root / "shard0", small_config, shard=Shard(0, 2))
    assert main([str(source), str(root / "shard1"), *CLI_OPTIONS, "--shard", "1/2"]) == 0
    return [root / "shard0", root / "shard1"]


@pytest.fixture(scope="module")
def merged(shard_dirs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "dataset"
    assert main(["merge", str(out), *map(str, reversed(shard_dirs))]) == 0  # any order
    return out


# ---------------------------------------------------------------- assignment


def test_shards_partition_any_set_of_sources():
    sources = [f"speaker{i % 7}/take {i}.mp4" for i in range(300)]
    for count in (1, 2, 3, 5):
        owners = [[i for i in range(count) if Shard(i, count).holds(s)] for s in sources]
        assert owners == [[shard_of(s, count)] for s in sources]  # exactly one shard each
        sizes = np.bincount([o[0] for o in owners], minlength=count)
        assert sizes.min() > 0.6 * len(sources) / count  # roughly balanced
    assert [shard_of(s, 4) for s in sources[:50]] == [shard_of(s, 4) for s in sources[:50]]


def test_the_two_shards_split_the_input_folder_between_them(prepared, shard_dirs):
    _, reference, _ = prepared
    shards = [load_shard(folder) for folder in shard_dirs]
    assert [s.shard for s in shards] == [Shard(0, 2), Shard(1, 2)]
    lists = [s.shard_sources for s in shards]
    assert all(lists) and not set(lists[0]) & set(lists[1])  # both used, no source twice
    whole = Manifest.load(reference / MANIFEST_NAME)
    assert sorted(lists[0] + lists[1]) == sorted({e["source"] for e in whole.clips})  # all 6 videos
    assert shards[0].config == whole.config  # the shard is not part of the config


@pytest.mark.parametrize(
    ("text", "message"),
    [("3/2", "shard 3/2: need 0 <= I < N"), ("0/0", "shard 0/0: need"), ("-1/2", "expected I/N"),
     ("1", "expected I/N"), ("a/b", "expected I/N")],
)  # fmt: skip
def test_bad_shard_values_are_refused_with_one_clear_message(text, message, tmp_path, capsys):
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), str(tmp_path / "out"), f"--shard={text}"])  # "=": -1/2 is no option
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert Shard.parse(" 1/3 ") == Shard(1, 3) and str(Shard(1, 3)) == "1/3"


# ---------------------------------------------------------------- merge


def test_merged_shards_equal_one_unsharded_run(prepared, shard_dirs, merged):
    _, reference, _ = prepared
    assert manifest_payload(merged) == manifest_payload(reference)  # clips, splits, config, input_dir
    got, want = PreparedDataset(merged), PreparedDataset(reference)
    assert [c["id"] for c in got.clips] == [c["id"] for c in want.clips] and len(got.clips) == 4
    for clip in got.clips:
        for path in clip_files(merged, clip):  # frames, landmarks (and audio): linked from a shard
            owner = next(folder for folder in shard_dirs if (folder / path.relative_to(merged)).is_file())
            assert path.stat().st_ino == (owner / path.relative_to(merged)).stat().st_ino  # a hard link
        a, b = got.load_landmarks(clip["id"]), want.load_landmarks(clip["id"])
        for field in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
        assert len(list(got.frames(clip["id"]))) == clip["n_frames"]
    assert got.audio("talk")[0].shape == want.audio("talk")[0].shape
    assert all(load_shard(folder) for folder in shard_dirs)  # the shards are left intact


def _drop_source(folder: Path) -> None:
    payload = manifest_payload(folder)
    payload["clips"] = [c for c in payload["clips"] if c["source"] != "noface.mp4"]
    (folder / MANIFEST_NAME).write_text(json.dumps(payload))


def _other_config(folder: Path) -> None:
    payload = manifest_payload(folder)
    payload["config"]["fps"] = 25.0
    (folder / MANIFEST_NAME).write_text(json.dumps(payload))


BROKEN_SHARD_1 = {  # what is done to a copy of shard 1 → the message the merge must give
    "interrupted": (lambda f: (f / ".work").mkdir(), r"shard1 has a \.work folder: its run was interrupted"),
    "file lost": (lambda f: (f / "clips/nested__gap/frames.mp4").unlink(), "shard1 lacks 1 clip file"),
    "unfinished": (_drop_source, "shard1 is unfinished: 1 of its 5 sources are not prepared .noface.mp4."),
    "other config": (_other_config, "shard1 was made with another config than .*shard0: fps"),
    "not run": (lambda f: (f / MANIFEST_NAME).unlink(), "shard1 has no manifest.json"),
}


@pytest.mark.parametrize("problem", BROKEN_SHARD_1)
def test_merge_refuses_a_broken_shard_and_writes_nothing(problem, shard_dirs, tmp_path):
    shard1 = tmp_path / "shard1"
    shutil.copytree(shard_dirs[1], shard1)
    breaks, message = BROKEN_SHARD_1[problem]
    breaks(shard1)
    with pytest.raises(ValueError, match=message):
        merge_shards(tmp_path / "out", [shard_dirs[0], shard1])
    assert not (tmp_path / "out").exists()


def test_merge_refuses_missing_repeated_or_unsharded_folders(prepared, shard_dirs, tmp_path, capsys):
    shard0, shard1 = shard_dirs
    assert main(["merge", str(tmp_path / "out"), str(shard0)]) == 2
    assert capsys.readouterr().err.startswith("error: shard 1/2 missing; given: ")
    with pytest.raises(ValueError, match="shard0 and .*shard0 are both shard 0/2"):
        merge_shards(tmp_path / "out", [shard0, shard0])
    with pytest.raises(ValueError, match="holds a whole dataset, not a shard"):
        merge_shards(tmp_path / "out", [shard0, prepared[1]])
    with pytest.raises(ValueError, match="already holds a manifest.json; merge into a new folder"):
        merge_shards(shard1, [shard0, shard1])
    assert not (tmp_path / "out").exists()


def test_a_clip_id_made_in_two_shards_goes_to_the_source_an_unsharded_run_prepares_first(tmp_path):
    # part 0 of x.mp4 and the file x_part0.mp4 both want the id x_part0 (see test_prepare.py)
    wanted = {"x.mp4": ["x_part0", "x_part1"], "x_part0.mp4": ["x_part0"], "y.mp4": ["y"]}
    count = 3
    assert shard_of("x.mp4", count) != shard_of("x_part0.mp4", count)  # the clash is between shards

    def entries(source: str) -> list[dict]:
        return [{"id": i, "source": source, "status": "prepared", "has_audio": False} for i in wanted[source]]

    def write_clips(folder: Path, source: str) -> None:
        for clip_id in wanted[source]:
            for name in ("frames.mp4", "landmarks.npz"):
                (folder / clip_id).mkdir(parents=True, exist_ok=True)
                (folder / clip_id / name).write_text(f"{source} {clip_id}")

    folders = []
    for index in range(count):
        folder, held = tmp_path / f"shard{index}", [s for s in sorted(wanted) if shard_of(s, count) == index]
        for source in held:
            write_clips(folder / "clips", source)
        clips = [entry for source in held for entry in entries(source)]
        Manifest({"fps": 30.0}, clips, "/in", Shard(index, count), held).save(folder / MANIFEST_NAME)
        folders.append(folder)
    summary = merge_shards(tmp_path / "merged", folders)

    whole = Manifest({"fps": 30.0}, [], "/in")  # what one unsharded run commits, source by source
    for source in sorted(wanted):
        write_clips(tmp_path / "whole" / ".work" / source, source)
        whole.commit(tmp_path / "whole", tmp_path / "whole" / ".work" / source, source, entries(source))
    assert Manifest.load(tmp_path / "merged" / MANIFEST_NAME) == whole
    assert summary.prepared == ["x_part0", "x_part1", "y"]
    assert summary.skipped == [("x_part0", "clip id x_part0 is already used by x.mp4; rename one file")]
    assert (tmp_path / "merged" / "clips" / "x_part0" / "frames.mp4").read_text() == "x.mp4 x_part0"


# ---------------------------------------------------------------- interruption


def test_a_killed_shard_is_refused_then_resumes_and_merges(
    resume_input, resume_reference, tmp_path, small_config, monkeypatch
):
    shard, out = Shard(0, 1), tmp_path / "shard"  # 0/1: one shard holding both videos, a.mp4 and b.mp4
    real_write_parts = prepare_module.write_parts

    def killed_on_b(clip, *args, **kwargs):
        if clip.source == "b.mp4":
            raise KeyboardInterrupt  # the machine dies in the middle of the second video
        return real_write_parts(clip, *args, **kwargs)

    monkeypatch.setattr(prepare_module, "write_parts", killed_on_b)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(resume_input, out, small_config, shard=shard)
    with pytest.raises(ValueError, match="interrupted; run its shard .0/1. again"):
        merge_shards(tmp_path / "merged", [out])
    shutil.rmtree(out / ".work")  # as if killed in b's first pass of a resumed run (no .work yet)
    with pytest.raises(ValueError, match=r"unfinished: 1 of its 2 sources are not prepared \(b.mp4\)"):
        merge_shards(tmp_path / "merged", [out])
    with pytest.raises(ValueError, match="holds shard 0/1, this run asks for no shard"):
        prepare_dataset(resume_input, out, small_config)  # resuming takes the same --shard
    with pytest.raises(ValueError, match="holds shard 0/1, this run asks for shard 1/2"):
        prepare_dataset(resume_input, out, small_config, shard=Shard(1, 2))

    monkeypatch.setattr(prepare_module, "write_parts", real_write_parts)
    summary = prepare_dataset(resume_input, out, small_config, shard=shard)
    assert summary.resumed == ["a.mp4"] and list(summary.seconds) == ["b.mp4"]
    assert "shard 0/1 only" in str(summary)
    merge_shards(tmp_path / "merged", [out])
    assert manifest_payload(tmp_path / "merged") == manifest_payload(resume_reference)
