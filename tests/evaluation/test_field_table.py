"""The papers' table: skipping metrics without networks (one line each, with the reason), the field metrics
through stand-in networks, the kit's measures, published rows.

Videos are 8 frames of the sample portrait at 64² (``clips_for_tables``), so the module runs in seconds.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clips_for_tables import FRAMES, talking_frames, write_clip, write_sets  # tests/evaluation/, on the path

from aniportrait_lib.evaluation.field_table import (
    FIELD_COLUMNS,
    KIT_COLUMNS,
    PUBLISHED_CSV,
    FieldTableConfig,
    beside_published,
    evaluate_pairs,
    load_published,
    markdown_table,
)
from aniportrait_lib.evaluation.video_pairs import VideoPair, find_pairs
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.video_io import write_video


@pytest.fixture(scope="module")
def extractor():
    found = LandmarkExtractor()
    yield found
    found.close()


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    return write_sets(tmp_path_factory.mktemp("sets"))


ABSENT = {key: f"/nowhere/metrics/{key} not found (from somewhere)" for key in
          ("fid_inception", "fvd_i3d", "syncnet", "arcface")}  # fmt: skip


def test_without_networks_every_field_metric_but_lmd_is_skipped_with_its_reason(sets, extractor):
    pairs = find_pairs(*sets, suffix="_gen")
    result = evaluate_pairs(pairs, ABSENT, extractor, "same videos")
    by_metric = {line.split(" skipped: ")[0]: line for line in result.skipped}
    for metric, key in (
        ("FID", "fid_inception"),
        ("FVD", "fvd_i3d"),
        ("LSE", "syncnet"),
        ("CSIM", "arcface"),
    ):
        assert by_metric[metric] == f"{metric} skipped: {ABSENT[key]}"
        assert all(math.isnan(result.row[c]) for c in FIELD_COLUMNS if c.startswith(metric))
    if importlib.util.find_spec("aniportrait_lib.evaluation.lmd") is not None:
        assert "LMD" not in by_metric and result.row["LMD↓"] == pytest.approx(0.0, abs=1e-6)
    table = result.table()
    assert list(table.columns) == list(FIELD_COLUMNS + KIT_COLUMNS) and list(table.index) == ["same videos"]
    # identical videos: PSNR at its cap, SSIM 1, the re-extracted mouths move together, a face everywhere
    assert table.loc["same videos", "PSNR↑"] == 100.0 and table.loc["same videos", "SSIM↑"] == pytest.approx(
        1.0
    )
    assert table.loc["same videos", "mouth corr↑"] == pytest.approx(1.0)
    assert table.loc["same videos", "no face↓"] == 0.0
    assert result.frames == 2 * FRAMES and list(result.per_video.index) == ["clipA", "clipB"]
    assert result.skipped_metrics[:4] == ["FID", "FVD", "LSE", "CSIM"] and result.unmeasured_metrics == []


def test_worse_videos_score_worse_and_short_videos_skip_fvd(tmp_path, extractor):
    frames = talking_frames()
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 40, frames.shape), 0, 255).astype(np.uint8)
    pair = VideoPair("n", write_clip(tmp_path / "gen.mp4", noisy), write_clip(tmp_path / "ref.mp4", frames))
    networks = {**ABSENT, "fvd_i3d": tmp_path / "i3d.pt"}  # "present", but the videos are too short for it
    result = evaluate_pairs([pair], networks, extractor, config=FieldTableConfig(fvd_clip_frames=16))
    assert "FVD skipped: videos of 8 frames, shorter than FVD's 16-frame clips" in result.skipped
    assert result.row["PSNR↑"] < 25 and result.row["SSIM↑"] < 0.8
    if "LMD" in result.unmeasured_metrics:  # the noise hides the face from MediaPipe: said, not a crash
        assert math.isnan(result.row["LMD↓"]) and "LMD not measurable on these videos: " in "".join(
            result.skipped
        )


def test_lse_is_skipped_when_no_video_has_speech(tmp_path, extractor):
    frames = talking_frames(4)
    pair = VideoPair(
        "q", write_clip(tmp_path / "g.mp4", frames, False), write_clip(tmp_path / "r.mp4", frames)
    )
    result = evaluate_pairs([pair], {**ABSENT, "syncnet": tmp_path / "syncnet_v2.model"}, extractor)
    assert any(line.startswith("LSE skipped: no speech for any video") for line in result.skipped)


@pytest.mark.skipif(
    not (Path(__file__).parent / "standins_frechet.py").is_file()
    or importlib.util.find_spec("aniportrait_lib.evaluation.frechet") is None,
    reason="the FID module or its stand-in writer is not in this checkout",
)
def test_fid_runs_with_a_network_file_and_is_zero_for_identical_sets(sets, extractor, tmp_path):
    from standins_frechet import write_fid_standin  # tests/evaluation/ (pytest puts it on the path)

    detector = tmp_path / "inception-2015-12-05.pt"
    write_fid_standin(detector)
    result = evaluate_pairs(
        find_pairs(*sets, suffix="_gen"), {**ABSENT, "fid_inception": detector}, extractor
    )
    assert not any(line.startswith("FID") for line in result.skipped)
    assert result.row["FID↓"] == pytest.approx(0.0, abs=1e-3)


def test_published_rows_each_cite_a_source_and_sit_below_the_measured_row():
    published = load_published()
    assert len(published) >= 1 and published.index.name == "method"
    assert (published.paper.str.len() > 0).all() and published.url.str.startswith("https://").all()
    assert published[list(FIELD_COLUMNS)].notna().any(axis=1).all(), "every row gives at least one number"
    measured = pd.DataFrame([{"FID↓": 1.0, "PSNR↑": 30.0}], index=["kit"])
    both = beside_published(measured, published)
    assert both.index[0] == "kit" and both.source.iloc[0] == "this kit" and len(both) == len(published) + 1
    assert list(both.columns[: len(FIELD_COLUMNS)]) == list(FIELD_COLUMNS) and "PSNR↑" in both.columns
    assert PUBLISHED_CSV.name in str(PUBLISHED_CSV)


def test_a_bad_published_file_is_named(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(PUBLISHED_CSV.read_text().splitlines()[0] + "\n")  # the header only: fine, no rows
    assert load_published(path).empty
    header = PUBLISHED_CSV.read_text().splitlines()[0]
    row = {name: "x" for name in header.split(",")}
    path.write_text(header + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(ValueError, match=rf"{path.name} line 2: fid = 'x' is not a number"):
        load_published(path)
    path.write_text("paper,method\nA,B\n")
    with pytest.raises(ValueError, match=f"{path.name}: missing column"):
        load_published(path)


def test_markdown_table_rounds_and_marks_missing_values():
    table = pd.DataFrame([{"FID↓": 1.23456, "LMD↓": math.nan, "note": "a|b"}], index=["kit"])
    assert markdown_table(table, digits=2).splitlines() == [
        "|  | FID↓ | LMD↓ | note |", "|---|---|---|---|", "| kit | 1.23 | - | a\\|b |",
    ]  # fmt: skip


@pytest.mark.skipif(
    not (Path(__file__).parent / "standins_faces.py").is_file()
    or importlib.util.find_spec("aniportrait_lib.evaluation.identity") is None,
    reason="the CSIM module or its stand-in writer is not in this checkout",
)
def test_csim_runs_with_a_network_file_and_a_wrong_file_is_an_error_naming_it(sets, extractor, tmp_path):
    from standins_faces import write_arcface_standin  # tests/evaluation/ (pytest puts it on the path)

    network = write_arcface_standin(tmp_path / "w600k_r50.onnx")
    pairs = find_pairs(*sets, suffix="_gen")
    result = evaluate_pairs(pairs, {**ABSENT, "arcface": network}, extractor)
    assert "CSIM" not in result.skipped_metrics + result.unmeasured_metrics
    assert -1.0 <= result.row["CSIM↑"] <= 1.0
    wrong = tmp_path / "not_arcface.onnx"
    wrong.write_bytes(b"this is no ONNX model")
    with pytest.raises(ValueError, match="not_arcface.onnx"):
        evaluate_pairs(pairs, {**ABSENT, "arcface": wrong}, extractor)


@pytest.mark.skipif(
    not (Path(__file__).parent / "standins_faces.py").is_file()
    or importlib.util.find_spec("aniportrait_lib.evaluation.lip_sync") is None,
    reason="the LSE module or its stand-in writer is not in this checkout",
)
def test_lse_runs_with_a_network_file_on_the_pairs_speech(tmp_path, extractor):
    from standins_faces import write_syncnet_standin  # tests/evaluation/ (pytest puts it on the path)

    frames = talking_frames(30)
    t = np.arange(len(frames) * 16_000 // 30) / 16_000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    video = write_video(tmp_path / "clip.mp4", frames, 30.0, audio=(speech, 16_000))
    network = write_syncnet_standin(tmp_path / "syncnet_v2.model")
    result = evaluate_pairs([VideoPair("c", video, video, video)], {**ABSENT, "syncnet": network}, extractor)
    assert "LSE" not in result.skipped_metrics + result.unmeasured_metrics, result.skipped
    assert result.row["LSE-D↓"] >= 0 and result.row["LSE-C↑"] >= 0  # median minus minimum, minimum distance
