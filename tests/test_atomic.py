import importlib
import json
import os
import stat

import pytest

from aniportrait_lib import atomic


def test_write_json_round_trips(tmp_path):
    path = atomic.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys


def test_failure_keeps_previous_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "keep.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(dest) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("killed mid-write")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_temp_file_keeps_the_suffix(tmp_path):
    with atomic.atomic_path(tmp_path / "video.mp4") as tmp:
        assert tmp.suffix == ".mp4"
        tmp.write_bytes(b"x")
    assert (tmp_path / "video.mp4").read_bytes() == b"x"


def test_written_files_get_the_mode_open_would_give(tmp_path):
    mask = os.umask(0o022)
    try:
        importlib.reload(atomic)  # the module reads the umask once
        path = atomic.write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as handle:
            handle.write("x")
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
    finally:
        os.umask(mask)
        importlib.reload(atomic)
