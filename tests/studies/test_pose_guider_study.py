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
