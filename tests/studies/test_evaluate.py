"""Notebook 07's library: notebook 05's generation settings, the networks table and the logged metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from aniportrait_lib.evaluation.field_table import FIELD_COLUMNS, KIT_COLUMNS, FieldTable
from aniportrait_lib.evaluation.video_pairs import VideoPair
from aniportrait_lib.runner.notebook import start_notebook
from aniportrait_lib.studies.evaluate import (
    evaluate_study_config,
    generation_settings,
    log_field_table,
    metric_networks,
    network_table,
    pair_frames_figure,
)
from aniportrait_lib.video_io import write_video
from aniportrait_lib.weights.layout import METRIC_COMPONENTS


def test_generation_settings_are_read_from_notebook_05s_config(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"weights": {"config": {"width": 96, "face_crop_scale": 1.9}}})
    )
    assert generation_settings(tmp_path) == (96, 1.9)
    with pytest.raises(ValueError, match=r"missing/config.json: no generation settings of notebook 05"):
        generation_settings(tmp_path / "missing")


def test_network_table_says_which_networks_are_present(tmp_path):
    present = METRIC_COMPONENTS[1]
    (tmp_path / present.path).parent.mkdir(parents=True)
    (tmp_path / present.path).write_bytes(b"x")
    table = network_table(metric_networks(tmp_path))
    assert list(table.index) == [c.key for c in METRIC_COMPONENTS]
    assert table.present.tolist() == [c.key == present.key for c in METRIC_COMPONENTS]
    assert table.loc[present.key, "file"] == str(tmp_path / present.path)


def test_logged_metrics_leave_out_what_was_not_measured(tmp_path):
    row = dict.fromkeys(FIELD_COLUMNS + KIT_COLUMNS, math.nan)
    row.update({"PSNR↑": 21.5, "SSIM↑": 0.6, "no face↓": 0.0, "LMD↓": 1.25, "FID↓": 40.0})
    result = FieldTable("kit", row, ["FVD skipped: x"], pd.DataFrame())
    run = start_notebook("07_evaluate", "quick", tmp_path)
    logged = log_field_table(run, result)
    assert logged == {"eval_psnr": 21.5, "eval_ssim": 0.6, "eval_no_face_fraction": 0.0, "eval_lmd": 1.25,
                      "eval_field_columns_measured": 2.0}  # fmt: skip
    assert run.metrics["eval_lmd"].direction == "lower" and run.metrics["eval_psnr"].unit == "dB"
    assert (
        json.loads((tmp_path / "07_evaluate" / "metrics.json").read_text())["metrics"].keys() == logged.keys()
    )


def test_small_profiles_measure_the_first_frames_and_gpu_all():
    assert evaluate_study_config("quick").max_frames == 48 and evaluate_study_config("cpu").max_frames == 32
    assert evaluate_study_config("gpu").max_frames is None and evaluate_study_config("other").name == "kit"


def test_pair_figure_shows_generated_over_real_frames_at_the_same_indices(tmp_path):
    ramp = np.stack([np.full((16, 16, 3), 20 * t, np.uint8) for t in range(11)])
    pair = VideoPair(
        "x", write_video(tmp_path / "g.mp4", ramp, 30.0), write_video(tmp_path / "r.mp4", ramp[:9], 30.0)
    )
    fig = pair_frames_figure(pair, columns=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["generated 0", "generated 4", "generated 8", "real 0", "real 4", "real 8"]
    shown = [int(ax.images[0].get_array().mean()) for ax in fig.axes]
    assert all(abs(a - b) <= 3 for a, b in zip(shown, [0, 80, 160] * 2, strict=True)), shown
