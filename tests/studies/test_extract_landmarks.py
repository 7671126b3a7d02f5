"""Notebook 01's library: the source | pose-image video and the logged metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aniportrait_lib.plots import LABEL_HEIGHT
from aniportrait_lib.runner.notebook import start_notebook
from aniportrait_lib.studies.extract_landmarks import log_extraction_metrics, pose_image_video
from aniportrait_lib.video_io import probe_video, read_frames

NOTEBOOK = "01_extract_landmarks"
TABLE = pd.DataFrame(  # two held-out clips, the columns of ExtractionError
    {"landmark_px": [0.3, 0.5], "landmark_px_p95": [0.6, 0.9], "rotation_deg": [0.4, 0.6],
     "translation": [0.1, 0.1], "mesh_cm": [0.07, 0.09], "found_fraction": [1.0, 0.5]},
    index=["clip_a", "clip_b"],
)  # fmt: skip


def test_pose_image_video_draws_black_where_no_face_was_found(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.full((3, 48, 64, 3), 255, np.uint8)
    lmks = rng.uniform(0.2, 0.8, (3, 478, 3))
    lmks[1] = np.nan
    path = pose_image_video(tmp_path / "v.mp4", frames, lmks, 30.0)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (3, 2 * 64, 48 + LABEL_HEIGHT)
    decoded = list(read_frames(path))
    assert decoded[1][LABEL_HEIGHT:, 64:].max() < 16 and decoded[0][LABEL_HEIGHT:, 64:].max() > 100
    assert decoded[1][LABEL_HEIGHT:, :64].min() > 230  # the source frame, left


def test_metrics_are_the_means_over_clips(tmp_path):
    run = start_notebook(NOTEBOOK, "quick", tmp_path)
    logged = log_extraction_metrics(run, TABLE, prepared_clips=8)
    assert logged["extraction_landmark_px"] == pytest.approx(0.4)
    assert logged["extraction_mesh_cm"] == pytest.approx(0.08)
    assert logged["extraction_found_fraction"] == 0.75 and logged["prepared_clips"] == 8


@pytest.mark.parametrize("profile", ["quick", "cpu"])
def test_metrics_are_the_ones_the_baselines_judge(profile, check_against_baseline, tmp_path):
    run = start_notebook(NOTEBOOK, profile, tmp_path)
    logged = log_extraction_metrics(run, TABLE, prepared_clips=8)
    check_against_baseline(run, logged, NOTEBOOK, profile)
