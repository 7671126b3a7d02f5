"""``python -m aniportrait_lib.evaluate``: the table for good folders, one clear line and exit 2 for bad
input, and the metric networks looked up in a weights folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from aniportrait_lib import evaluate
from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.studies.evaluate import metric_networks
from aniportrait_lib.video_io import write_video
from aniportrait_lib.weights.layout import METRIC_COMPONENTS


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Reference and generated folders of one 6-frame 64² clip of the portrait, an empty weights folder."""
    root = tmp_path_factory.mktemp("cli")
    portrait = cv2.resize(load_portrait(), (64, 64), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.roll(portrait, t % 2, axis=0) for t in range(6)])
    write_video(root / "reference" / "clip1.mp4", frames, 30.0)
    write_video(root / "generated" / "clip1.mp4", frames[::-1], 30.0)
    (root / "weights").mkdir()
    return root / "generated", root / "reference", root / "weights"


def run(capsys, *args) -> tuple[int, str, str]:
    code = evaluate.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_measures_and_writes_the_markdown_table_with_skips_and_published_rows(folders, tmp_path, capsys):
    generated, reference, weights = folders
    output = tmp_path / "table.md"
    code, out, _ = run(capsys, "--generated", generated, "--reference", reference, "--weights", weights,
                       "--output", output, "--name", "mine")  # fmt: skip
    assert code == 0 and "1 pairs, 6 frames measured" in out
    text = output.read_text()
    assert text.startswith("# mine: the papers' table")
    for metric in ("FID", "FVD", "CSIM"):
        assert f"- {metric} skipped: {weights}/metrics/" in text and f"{metric} skipped" in out
    assert "LSE skipped: " in text  # no network and no speech
    assert "| mine |" in text and "Published rows (other data and scale" in text and "| AniPortrait |" in text


def test_writes_the_csv_table(folders, tmp_path, capsys):
    generated, reference, weights = folders
    output = tmp_path / "table.csv"
    code, _, _ = run(capsys, "--generated", generated, "--reference", reference, "--weights", weights,
                     "--output", output, "--max-frames", 4)  # fmt: skip
    table = pd.read_csv(output, index_col="method")
    assert code == 0 and list(table.index) == ["generated"]
    assert {"FID↓", "LMD↓", "PSNR↑", "SSIM↑"} <= set(table.columns)
    assert 10 < table.loc["generated", "PSNR↑"] < 100  # reversed frames: similar, not identical


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--reference": "missing"}, "missing: the reference folder does not exist"),
        ({"--suffix": "_gen"}, "no generated video for 1 reference clip(s): clip1_gen.mp4"),
        ({"--output": "table.txt"}, "table.txt: --output must end in .csv or .md"),
        ({"--max-frames": "0"}, "--max-frames 0: must be at least 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(folders, tmp_path, capsys, change, message):
    generated, reference, weights = folders
    args = {"--generated": generated, "--reference": reference, "--weights": weights,
            "--output": tmp_path / "table.md"}  # fmt: skip
    for key, value in change.items():
        args[key] = tmp_path / value if key in ("--reference", "--output") else value
    code, out, err = run(capsys, *[item for pair in args.items() for item in pair])
    assert code == 2 and err.strip().splitlines() == [f"error: {err.strip().removeprefix('error: ')}"]
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("table.*")), "no partial output file"


def test_a_corrupt_video_is_named(folders, tmp_path, capsys):
    _, reference, weights = folders
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "clip1.mp4").write_bytes(b"not a video at all")
    code, _, err = run(capsys, "--generated", broken, "--reference", reference, "--weights", weights)
    assert code == 2 and "clip1.mp4" in err and str(broken) in err and "Traceback" not in err


def test_metric_networks_name_the_missing_file_and_its_source(tmp_path):
    networks = metric_networks(tmp_path)
    for component in METRIC_COMPONENTS:
        assert networks[component.key] == f"{tmp_path / component.path} not found (from {component.source})"
    present = METRIC_COMPONENTS[0]
    (tmp_path / present.path).parent.mkdir(parents=True)
    (tmp_path / present.path).write_bytes(b"x")
    assert metric_networks(tmp_path)[present.key] == tmp_path / present.path


def _standins(name: str):
    """A stand-in writer module of tests/evaluation/ (tiny random networks in the real file formats)."""
    path = Path(__file__).parent / "evaluation" / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in this checkout")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_with_every_metric_network_present_the_whole_row_is_measured(tmp_path, capsys):
    frechet, faces = _standins("standins_frechet"), _standins("standins_faces")
    weights = tmp_path / "weights"
    paths = {c.key: weights / c.path for c in METRIC_COMPONENTS}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    frechet.write_fid_standin(paths["fid_inception"])
    frechet.write_fvd_standin(paths["fvd_i3d"])
    faces.write_syncnet_standin(paths["syncnet"])
    faces.write_arcface_standin(paths["arcface"])
    portrait = cv2.resize(load_portrait(), (64, 64), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.roll(portrait, t % 3, axis=0) for t in range(32)])  # two 16-frame FVD clips
    t = np.arange(32 * 16_000 // 30) / 16_000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    write_video(tmp_path / "reference" / "c.mp4", frames, 30.0, audio=(speech, 16_000))
    write_video(tmp_path / "generated" / "c.mp4", frames[::-1], 30.0)
    output = tmp_path / "row.csv"
    code, out, _ = run(capsys, "--generated", tmp_path / "generated", "--reference", tmp_path / "reference",
                       "--weights", weights, "--output", output)  # fmt: skip
    row = pd.read_csv(output, index_col="method").loc["generated"]
    assert code == 0 and "skipped" not in out and "not measurable" not in out
    assert row[["FID↓", "FVD↓", "LSE-C↑", "LSE-D↓", "CSIM↑", "LMD↓"]].notna().all(), row
