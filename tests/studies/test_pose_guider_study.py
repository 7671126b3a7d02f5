"""Notebook 03's loss figure: one moving average per guider, the longer final run dashed."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from aniportrait_lib.studies.pose_guider_study import FINAL_MODEL, GUIDER_NAMES, GuiderStudy, plot_losses


def test_loss_figure_compares_the_guiders_moving_averages():
    losses = {"a": list(np.linspace(1, 0.1, 30)), "b": [0.5] * 30, "final": [0.5] * 60}
    fig = plot_losses(GuiderStudy([], {}, losses, {}, {}), window=10)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [GUIDER_NAMES["a"], GUIDER_NAMES["b"], FINAL_MODEL]
    assert len(lines[0].get_xdata()) == 21 and lines[0].get_xdata()[0] == 10  # averages, at their last step
    assert lines[2].get_linestyle() == "--" and ax.get_yscale() == "log"
    plt.close(fig)


def test_small_profiles_encode_the_training_frames_once_for_every_run(tiny_stage1, tmp_path):
    """prepare_frozen_models (a small profile, frames in memory) builds the frame cache; the study's trainers
    read it; a prepared folder's frames (not in memory) are encoded at every step instead."""
    from dataclasses import replace

    from aniportrait_lib.studies.configs import small_lmk2video_profile
    from aniportrait_lib.studies.pose_guider_study import guider_trainer, prepare_frozen_models

    profile = small_lmk2video_profile("tiny", tiny_stage1.size, 2, 2, 2, 2, 0, 0)
    profile = replace(profile, model=tiny_stage1.model(), stage1=tiny_stage1.config(max_steps=2))
    frozen = prepare_frozen_models(tiny_stage1.dataset, profile)
    cache = frozen.frame_cache
    assert cache is not None and cache.source is tiny_stage1.dataset.source and len(cache) == 10
    trainer = guider_trainer("a", profile, tiny_stage1.dataset, frozen, tmp_path / "a")
    assert trainer.frame_cache is cache and "clip_pixels" not in next(iter(trainer.loader()))
    assert len(trainer.train()) == 2
