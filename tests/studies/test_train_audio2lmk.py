"""Notebook 02's library: live loss curves from the trainer's log, the pose-image video, its metrics."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from aniportrait_lib.evaluation.audio2lmk_eval import MODEL
from aniportrait_lib.plots import LABEL_HEIGHT
from aniportrait_lib.runner.notebook import start_notebook
from aniportrait_lib.studies.train_audio2lmk import (
    log_audio2lmk_metrics,
    plot_mouth_opening,
    side_by_side_pose_video,
    train_with_live_plot,
)
from aniportrait_lib.training.loss_log import append_loss_row
from aniportrait_lib.video_io import probe_video

NOTEBOOK = "02_train_audio2lmk"
METHODS = [MODEL, "mean mesh", "loudness envelope"]
COLUMNS = ["lve", "mouth_corr", "landmark_px", "landmark_px_full", "pose_l1_deg", "pose_std_ratio",
           "beat_align", "beat_align_truth", "beat_align_chance"]  # fmt: skip


class _LoggingTrainer:
    """Appends one ``log.csv`` row per step, like the kit's trainers (loss 1/step)."""

    def __init__(self, folder, max_steps: int):
        self.step, self.config, self.log_path = 0, SimpleNamespace(max_steps=max_steps), folder / "log.csv"

    def train(self, stop_after: int) -> float:
        for _ in range(min(stop_after, self.config.max_steps - self.step)):
            self.step += 1
            append_loss_row(self.log_path, self.step, 1.0 / self.step, 1e-4, 0.01)
        return 1.0 / self.step


def test_live_plot_redraws_the_whole_log_after_each_slice(tmp_path, capsys):
    fig, seconds = train_with_live_plot(_LoggingTrainer(tmp_path, 23), every=10, title="mesh loss")
    (ax,) = fig.axes
    raw, mean = ax.get_lines()  # cleared before each redraw: one curve of each, not three
    assert raw.get_xdata().tolist() == list(range(1, 24)) and mean.get_label() == "mean of 10"
    assert (ax.get_title(), ax.get_ylabel(), ax.get_yscale()) == ("mesh loss", "L1 loss", "log")
    assert seconds >= 0 and "mesh loss: step 23/23" in capsys.readouterr().out
    with pytest.raises(ValueError, match="every must be >= 1"):
        train_with_live_plot(_LoggingTrainer(tmp_path, 1), every=0)


def test_mouth_opening_plots_truth_and_each_method():
    fig, ax = plt.subplots()
    offsets = np.zeros((5, 468, 3))
    plot_mouth_opening(ax, 30.0, offsets, {"a": offsets, "b": offsets}, np.zeros((468, 3)))
    assert [line.get_label() for line in ax.get_lines()] == ["truth", "a", "b"]
    plt.close(fig)


def test_pose_video_shows_prediction_and_truth_labelled(tmp_path):
    rng = np.random.default_rng(0)
    predicted, true = rng.uniform(8, 56, (2, 3, 468, 2))
    path = side_by_side_pose_video(tmp_path / "v.mp4", predicted, true, (64, 48), 30.0)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (3, 2 * 48, 64 + LABEL_HEIGHT)
    with pytest.raises(ValueError, match="differ in shape"):
        side_by_side_pose_video(tmp_path / "x.mp4", predicted, true[:2], (64, 48), 30.0)


def _summary() -> pd.DataFrame:
    values = np.arange(len(METHODS) * len(COLUMNS), dtype=float).reshape(len(METHODS), -1) / 10 + 0.1
    summary = pd.DataFrame(values, index=METHODS, columns=COLUMNS)
    summary.loc[MODEL, "beat_align"] = np.nan  # no velocity extremum in the predicted head motion
    return summary


def test_metrics_are_read_from_the_summary(tmp_path):
    summary, run = _summary(), start_notebook(NOTEBOOK, "quick", tmp_path)
    logged = log_audio2lmk_metrics(run, summary, {"audio2mesh": 12.5})
    assert logged["audio2mesh_train_seconds"] == 12.5 and "audio2pose_train_seconds" not in logged
    assert logged["lve_envelope"] == summary.loc["loudness envelope", "lve"]
    assert logged["pose_l1_model"] == summary.loc[MODEL, "pose_l1_deg"]
    assert logged["beat_align_model"] == 0.0  # NaN logged as "aligned with nothing"
    with pytest.raises(ValueError, match="unknown model 'audio2video'"):
        log_audio2lmk_metrics(run, summary, {"audio2video": 1.0})


@pytest.mark.parametrize("profile", ["quick", "cpu"])
def test_metrics_are_the_ones_the_baselines_judge(profile, check_against_baseline, tmp_path):
    run = start_notebook(NOTEBOOK, profile, tmp_path)
    logged = log_audio2lmk_metrics(run, _summary(), {"audio2mesh": 1.0, "audio2pose": 2.0})
    check_against_baseline(run, logged, NOTEBOOK, profile)
