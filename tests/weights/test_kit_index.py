"""``kit_index.json``: writing and reading an index, finding exports under a folder, their problems.

Dummy files only: an index lists files and their sizes, whatever they hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aniportrait_lib.weights.kit_index import (
    INDEX_FILE,
    ExportComponent,
    KitExport,
    find_export,
    read_index,
    write_index,
)

PROVENANCE = {"source": "a test", "profile": "quick"}


def _files(folder: Path, **sizes: int) -> list[str]:
    """Write ``name=size`` dummy files (``__`` in a name is a sub-folder) and return their relative paths."""
    names = []
    for name, size in sizes.items():
        relative = name.replace("__", "/")
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        names.append(relative)
    return names


def _export(folder: Path, component: str, **sizes: int) -> Path:
    """A complete export of ``component`` with dummy files in ``folder``; returns its index."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_index(folder, component, _files(folder, **sizes), {"step": 1}, PROVENANCE)


# --------------------------------------------------------------------------------------------------
# write_index


def test_write_index_records_the_sizes_of_the_listed_files(tmp_path):
    _files(tmp_path, weights_pth=10, sub__config_json=5, unlisted=7)
    listed = ["weights_pth", tmp_path / "sub" / "config_json"]  # relative, and absolute inside the folder
    index = write_index(tmp_path, "stage1", listed, {"step": 3, "sampling": {"steps": 2}}, PROVENANCE)
    assert index == tmp_path / INDEX_FILE
    assert json.loads(index.read_text()) == {
        "format": "aniportrait-kit-export",
        "format_version": 1,
        "components": {
            "stage1": {
                "files": {"weights_pth": 10, "sub/config_json": 5},
                "config": {"step": 3, "sampling": {"steps": 2}},
                "made_by": PROVENANCE,
            }
        },
    }
    (component,) = read_index(index)
    assert component == ExportComponent(
        "stage1", tmp_path, {"weights_pth": 10, "sub/config_json": 5}, {"step": 3, "sampling": {"steps": 2}},
        PROVENANCE,
    )  # fmt: skip
    assert component.index == index and component.path("sub/config_json") == tmp_path / "sub" / "config_json"
    assert component.problems() == []


def test_write_index_refuses_a_file_outside_the_folder_or_a_missing_file(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    _files(tmp_path, outside=3)
    _files(folder, inside=4)
    for outside in (tmp_path / "outside", "../outside"):
        with pytest.raises(ValueError, match=r"outside is not inside the export folder .*export$"):
            write_index(folder, "stage1", ["inside", outside], {}, PROVENANCE)
    with pytest.raises(ValueError, match=r"never\.pth: listed for the 'audio2lmk' index but not written"):
        write_index(folder, "audio2lmk", ["inside", "never.pth"], {}, PROVENANCE)
    assert not (folder / INDEX_FILE).exists()  # nothing written for a refused export


def test_a_second_write_index_keeps_the_other_component(tmp_path):
    _export(tmp_path, "stage1", a=1)
    _export(tmp_path, "motion_module", b=2)
    assert {c.name: c.files for c in read_index(tmp_path / INDEX_FILE)} == {
        "stage1": {"a": 1},
        "motion_module": {"b": 2},
    }
    _export(tmp_path, "stage1", a=6)  # written again: replaced, the other one kept
    assert {c.name: c.files for c in read_index(tmp_path / INDEX_FILE)} == {
        "stage1": {"a": 6},
        "motion_module": {"b": 2},
    }


def test_an_unreadable_index_is_replaced_by_a_fresh_one(tmp_path):
    (tmp_path / INDEX_FILE).write_text("{not json")
    _export(tmp_path, "audio2lmk", a=3)
    assert [(c.name, c.files) for c in read_index(tmp_path / INDEX_FILE)] == [("audio2lmk", {"a": 3})]


# --------------------------------------------------------------------------------------------------
# read_index


def _payload(**changes) -> str:
    """A valid index's JSON with ``changes`` (``None`` drops a key)."""
    payload = {
        "format": "aniportrait-kit-export",
        "format_version": 1,
        "components": {"stage1": {"files": {"a": 1}, "config": {}}},
    }
    return json.dumps({k: v for k, v in {**payload, **changes}.items() if v is not None})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable index ("),
        (json.dumps([1, 2]), "not a kit export index (no \"format\": 'aniportrait-kit-export')"),
        (_payload(format="diffusers"), "not a kit export index"),
        (_payload(format_version=2), "index format version 2; this kit reads 1"),
        (_payload(format_version=None), "index format version None; this kit reads 1"),
        (_payload(components={}), "the index lists no components"),
        (_payload(components=None), "the index lists no components"),
        (_payload(components={"stage1": {"config": {}}}), "component 'stage1' has no file list"),
        (
            _payload(components={"stage1": {"files": {}, "config": [1]}}),
            "component 'stage1' has a malformed config",
        ),
    ],
    ids=[
        "json",
        "not-an-object",
        "other-format",
        "version-2",
        "no-version",
        "empty",
        "no-components",
        "no-files",
        "bad-config",
    ],
)
def test_read_index_rejects_a_bad_index_naming_the_file(tmp_path, content, message):
    path = tmp_path / "run" / INDEX_FILE
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        read_index(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_read_index_reads_the_valid_payload_the_bad_ones_derive_from(tmp_path):
    (tmp_path / INDEX_FILE).write_text(_payload())
    assert [(c.name, c.files, c.config, c.made_by) for c in read_index(tmp_path / INDEX_FILE)] == [
        ("stage1", {"a": 1}, {}, {})
    ]


def test_read_index_rejects_bytes_that_are_not_text(tmp_path):
    path = tmp_path / INDEX_FILE
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: not a readable index \("):
        read_index(path)


# --------------------------------------------------------------------------------------------------
# find_export


def test_find_export_reads_indexes_up_to_three_levels_below(tmp_path):
    _export(tmp_path, "audio2lmk", a=1)  # the folder itself
    _export(tmp_path / "one" / "two" / "three", "stage1", b=2)
    _export(tmp_path / "one" / "two" / "three" / "four", "motion_module", c=3)  # too deep
    export = find_export(tmp_path)
    assert export.root == tmp_path
    assert set(export.components) == {"audio2lmk", "stage1"}
    assert export["stage1"].folder == tmp_path / "one" / "two" / "three"
    assert "stage1" in export and "motion_module" not in export and export.get("motion_module") is None
    assert find_export(tmp_path / "one" / "two" / "three" / "four")["motion_module"].files == {"c": 3}


def test_find_export_skips_hidden_and_set_aside_folders(tmp_path):
    _export(tmp_path / "03_pose_guider_study" / "stage1_b", "stage1", a=1)
    _export(tmp_path / "03_pose_guider_study" / "stage1_b.previous", "stage1", a=2)  # a rerun's old output
    _export(tmp_path / ".cache" / "stage1_b", "stage1", a=3)
    _export(tmp_path / ".tmp-export", "motion_module", b=1)
    _export(tmp_path / "04_train_motion_module.previous" / "stage2", "motion_module", b=2)
    export = find_export(tmp_path)  # no "exported twice"
    assert set(export.components) == {"stage1"}
    assert export["stage1"].folder == tmp_path / "03_pose_guider_study" / "stage1_b"
    assert export["stage1"].files == {"a": 1}


def test_find_export_lists_every_problem_in_one_error(tmp_path):
    _export(tmp_path / "stage1_b", "stage1", missing=1, kept=2)
    (tmp_path / "stage1_b" / "missing").unlink()
    _export(tmp_path / "stage2", "motion_module", truncated=5)
    (tmp_path / "stage2" / "truncated").write_bytes(b"xxx")
    _export(tmp_path / "copy" / "stage1_b", "stage1", other=1)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / INDEX_FILE).write_text("{not json")
    with pytest.raises(ValueError) as info:
        find_export(tmp_path)
    first, unreadable, *others = str(info.value).splitlines()  # indexes in sorted folder order
    assert first == f"kit export {tmp_path} is inconsistent:"
    assert unreadable.startswith(f"  {tmp_path / 'broken' / INDEX_FILE}: not a readable index (")
    assert others == [
        f"  {tmp_path / 'stage1_b' / INDEX_FILE}: stage1 lists missing, which is missing",
        f"  stage1 is exported twice: in {tmp_path / 'copy' / 'stage1_b'} and in {tmp_path / 'stage1_b'} "
        "(point at a folder holding one of them)",
        f"  {tmp_path / 'stage2' / INDEX_FILE}: motion_module lists truncated with 5 bytes, the file has 3 "
        "(changed or truncated since the export)",
    ]


def test_find_export_checks_the_motion_module_against_the_stage1_denoiser(tmp_path):
    _export(tmp_path / "stage1_b", "stage1", denoising_unet_pth=8)
    (tmp_path / "stage2").mkdir()
    _files(tmp_path / "stage2", motion_module_pth=4)
    trained_on = {"stage1_denoiser": {"file": "denoising_unet_pth", "bytes": 9}}
    write_index(tmp_path / "stage2", "motion_module", ["motion_module_pth"], trained_on, PROVENANCE)
    with pytest.raises(ValueError) as info:
        find_export(tmp_path)
    assert "trained on stage-1 denoiser denoising_unet_pth (9 bytes)" in str(info.value)
    assert f"but {tmp_path / 'stage1_b'} exports denoising_unet_pth (8 bytes)" in str(info.value)
    trained_on["stage1_denoiser"]["bytes"] = 8
    write_index(tmp_path / "stage2", "motion_module", ["motion_module_pth"], trained_on, PROVENANCE)
    assert set(find_export(tmp_path).components) == {"stage1", "motion_module"}


def test_find_export_without_an_index_says_what_writes_one(tmp_path):
    with pytest.raises(ValueError, match=r"not a folder"):
        find_export(tmp_path / "absent")
    (tmp_path / "one" / "two" / "three" / "four").mkdir(parents=True)
    (tmp_path / "one" / "two" / "three" / "four" / INDEX_FILE).write_text("{}")  # too deep to count
    with pytest.raises(ValueError) as info:
        find_export(tmp_path)
    assert str(info.value) == (
        f"kit export {tmp_path}: no {INDEX_FILE} in this folder or 3 levels below. Kit exports are written "
        "by notebooks 02-04 (or save_stage1_run / export_stage2 / save_audio2lmk_run)"
    )


def test_a_run_folder_of_the_legacy_layout_points_at_the_index_command(tmp_path):
    _files(tmp_path, **{"03_pose_guider_study__stage1_b__model_config.json": 10})
    with pytest.raises(ValueError) as info:
        find_export(tmp_path)
    assert str(info.value) == (
        f"kit export {tmp_path} holds exports written before exports described themselves "
        f"(03_pose_guider_study/stage1_b/model_config.json), so it has no {INDEX_FILE}. Index them in place "
        f"once with:\n  python -m aniportrait_lib.weights index {tmp_path}"
    )
    _files(tmp_path, **{"02_train_audio2lmk__audio2lmk__audio2lmk.json": 10})
    with pytest.raises(ValueError) as info:
        find_export(tmp_path)
    pieces = "(02_train_audio2lmk/audio2lmk/audio2lmk.json, 03_pose_guider_study/stage1_b/model_config.json)"
    assert pieces in str(info.value)
    assert str(info.value).endswith(f"python -m aniportrait_lib.weights index {tmp_path}")


# --------------------------------------------------------------------------------------------------
# KitExport.require


def test_require_names_every_missing_component_and_what_writes_it(tmp_path):
    _export(tmp_path / "stage1_b", "stage1", a=1)
    export = find_export(tmp_path)
    export.require(["stage1"], "animating a portrait")  # present: no error
    with pytest.raises(ValueError) as info:
        export.require(["stage1", "motion_module", "audio2lmk"], "audio-driven generation")
    assert str(info.value) == (
        f"kit export {tmp_path} is incomplete for audio-driven generation; missing:\n"
        "  motion_module: the stage-2 export (notebook 04_train_motion_module, export cell: export_stage2)\n"
        "  audio2lmk: the Audio2Lmk export (notebook 02_train_audio2lmk, last cell: save_audio2lmk_run)\n"
        f"found: stage1 ({tmp_path / 'stage1_b'})"
    )
    with pytest.raises(ValueError, match=r"missing:\n  other: other\nfound: nothing$"):
        KitExport(tmp_path, {}).require(["other"], "a test")
