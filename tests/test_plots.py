"""The kit's plotting module: what each figure draws, and side-by-side videos frame by frame."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from aniportrait_lib.plots import (
    LABEL_HEIGHT,
    POSE_LABELS,
    image_grid,
    moving_average,
    plot_loss_curve,
    plot_pose_curves,
    pose_curves_figure,
    side_by_side_frames,
    side_by_side_video,
)
from aniportrait_lib.video_io import probe_video, read_frames


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_moving_average_is_the_mean_of_each_window():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], 2), [1.5, 2.5, 3.5, 4.5])
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)


def test_loss_curve_draws_every_step_and_the_average_at_the_last_step_it_covers(ax):
    losses = np.arange(1.0, 13.0)
    plot_loss_curve(ax, losses, steps=np.arange(10, 130, 10), window=4)
    raw, mean = ax.get_lines()
    assert raw.get_label() == "per step" and mean.get_label() == "mean of 4"
    np.testing.assert_array_equal(raw.get_xdata(), np.arange(10, 130, 10))
    assert mean.get_xdata()[0] == 40 and mean.get_ydata()[0] == pytest.approx(2.5)  # mean of 1..4
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="3 steps for 12 losses"):
        plot_loss_curve(ax, losses, steps=[1, 2, 3])


def test_loss_curves_of_several_runs_show_only_their_averages(ax):
    plot_loss_curve(ax, np.ones(20), window=10, label="run a", raw=False)
    plot_loss_curve(ax, np.ones(5), window=10, label="short run", raw=False, ls="--")  # shorter: raw
    (a, short) = ax.get_lines()
    assert (a.get_label(), len(a.get_xdata()), a.get_xdata()[0]) == ("run a", 11, 10)
    assert (short.get_label(), len(short.get_xdata()), short.get_linestyle()) == ("short run", 5, "--")


def test_pose_curves_label_each_component_and_mark_frames():
    pose = np.tile(np.arange(6.0), (30, 1))
    fig, axes = plt.subplots(6, 1)
    plot_pose_curves(axes, 30.0, {"truth": pose, "model": pose + 1})
    assert [ax.get_ylabel() for ax in axes] == list(POSE_LABELS) and axes[-1].get_xlabel() == "time (s)"
    assert axes[4].get_lines()[1].get_ydata()[0] == 5.0  # component 4 of the second curve
    plt.close(fig)
    fig = pose_curves_figure({"a": pose}, 10.0, components=(1, 5), frame=3, key_frames=[1, 2])
    top, bottom = fig.axes
    assert (top.get_ylabel(), bottom.get_ylabel()) == (POSE_LABELS[1], POSE_LABELS[5])
    assert len(top.get_lines()) == 1 + 2 + 1  # the curve, two key frames, the cursor
    assert top.get_lines()[-1].get_xdata()[0] == pytest.approx(0.3)  # frame 3 at 10 fps


def test_image_grid_fills_rows_and_checks_titles():
    images = [np.zeros((4, 4, 3), np.uint8)] * 3
    assert len(image_grid(images, ["a", "b", "c"], columns=2).axes) == 4
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        image_grid(images, ["a", "b"])


def test_side_by_side_frames_label_enlarge_and_check_panels():
    small = np.full((2, 8, 8, 3), 200, np.uint8)
    large = np.zeros((2, 16, 16, 3), np.uint8)
    frames = list(side_by_side_frames({"small": small, "large": large}, min_side=16))
    assert len(frames) == 2 and frames[0].shape == (LABEL_HEIGHT + 16, 32, 3)
    assert frames[0][LABEL_HEIGHT:, :16].min() == 200  # enlarged ×2 by nearest neighbour
    assert frames[0][:LABEL_HEIGHT].any()  # the names are written
    with pytest.raises(ValueError, match="differ in height"):
        list(side_by_side_frames({"small": small, "large": large}))
    with pytest.raises(ValueError):  # one panel has a frame more
        list(side_by_side_frames({"a": small, "b": np.concatenate([small, small])}))


def test_side_by_side_video_streams_generated_panels_with_audio(tmp_path):
    generated = (np.full((16, 16, 3), 10 * t, np.uint8) for t in range(5))
    path = side_by_side_video(
        tmp_path / "v.mp4", {"a": np.zeros((5, 16, 16, 3), np.uint8), "b": generated}, 25.0,
        audio=(np.zeros(16000 // 5, np.float32), 16000),
    )  # fmt: skip
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.audio_sample_rate) == (
        5,
        32,
        16 + LABEL_HEIGHT,
        16000,
    )
    last = list(read_frames(path))[-1]
    assert abs(int(last[-4, -4, 0]) - 40) <= 3  # the generator's last frame, right panel (H.264 rounding)
