"""Figures and videos for Audio2Lmk training and evaluation (notebook 02).

* :func:`train_with_live_plot` — runs an :class:`~aniportrait_lib.training.audio2lmk.Audio2LmkTrainer`
  in slices of ``every`` steps and redraws its loss curve after each slice (in Jupyter the figure
  is updated in place; elsewhere a progress line is printed);
* :func:`plot_mouth_opening` — mouth opening over time, truth vs methods;
* :func:`side_by_side_pose_video` — predicted | true pose images, with the speech muxed in.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from aniportrait_lib.evaluation.lip_metrics import mouth_opening
from aniportrait_lib.landmarks.drawing import draw_landmarks


def read_loss_log(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), losses (S,)) from a trainer's ``log.csv``."""
    with Path(path).open(newline="") as file:
        rows = list(csv.DictReader(file))
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def _draw_loss(ax, steps: np.ndarray, losses: np.ndarray, title: str, smooth: int = 10) -> None:
    ax.clear()
    ax.plot(steps, losses, lw=0.6, alpha=0.4, label="per step")
    if len(losses) >= smooth:
        kernel = np.ones(smooth) / smooth
        ax.plot(
            steps[smooth - 1 :], np.convolve(losses, kernel, mode="valid"), lw=1.5, label=f"mean of {smooth}"
        )
    ax.set(xlabel="step", ylabel="L1 loss", title=title, yscale="log")
    ax.legend(loc="upper right", fontsize="small")


def train_with_live_plot(trainer, every: int = 25, title: str = "training loss"):
    """Train to ``trainer.config.max_steps``, redrawing the loss curve every ``every`` steps.

    Returns:
        (figure, seconds spent training).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    try:
        from IPython.display import display

        handle = display(None, display_id=True)
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        handle = None
    fig, ax = plt.subplots(figsize=(8, 3))
    start = time.perf_counter()
    while trainer.step < trainer.config.max_steps:
        loss = trainer.train(stop_after=every)
        steps, losses = read_loss_log(trainer.log_path)
        _draw_loss(ax, steps, losses, title)
        elapsed = time.perf_counter() - start
        if handle is not None:
            handle.update(fig)
        print(
            f"\r{title}: step {trainer.step}/{trainer.config.max_steps} loss {loss:.4f} ({elapsed:.0f} s)",
            end="",
        )
    print()
    plt.close(fig)
    return fig, time.perf_counter() - start


def plot_mouth_opening(
    ax, fps: float, truth_offsets: np.ndarray, predictions: dict[str, np.ndarray], ref_mesh
):
    """Mouth opening (cm) over time: truth and each method's (T, 468, 3) offsets on ``ref_mesh`` (468, 3)."""
    time_s = np.arange(len(truth_offsets)) / fps
    ax.plot(time_s, mouth_opening(ref_mesh[None] + truth_offsets), "k", lw=2, label="truth")
    for label, offsets in predictions.items():
        ax.plot(time_s, mouth_opening(ref_mesh[None] + offsets), lw=1.2, label=label)
    ax.set(xlabel="time (s)", ylabel="mouth opening (cm)")
    ax.legend(loc="upper right", fontsize="small")


def side_by_side_pose_video(
    path: str | Path,
    predicted_2d: np.ndarray,
    true_2d: np.ndarray,
    size: tuple[int, int],
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Write ``[predicted | truth]`` pose images (official drawing) as an MP4 with the speech.

    Args:
        predicted_2d / true_2d: (T, 468, 2) pixel landmarks of an image of ``size`` = (H, W).
        audio: (float samples in [-1, 1], rate), muxed as AAC.
    """
    from aniportrait_lib.video_io import VideoWriter

    if predicted_2d.shape != true_2d.shape:
        raise ValueError(f"predicted {predicted_2d.shape} and true {true_2d.shape} landmarks differ in shape")
    height, width = size
    with VideoWriter(path, fps, audio=audio) as writer:
        for pred, true in zip(predicted_2d, true_2d, strict=True):
            left = draw_landmarks((width, height), pred, normed=False)
            right = draw_landmarks((width, height), true, normed=False)
            writer.write(np.concatenate([left, right], axis=1))
    return Path(path)
