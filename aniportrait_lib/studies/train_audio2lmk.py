"""What notebook 02 shows of Audio2Lmk training and evaluation: live loss curves, mouth opening over time, a
predicted | true pose-image video, and the metrics it logs.

* :func:`train_with_live_plot` — runs an :class:`~aniportrait_lib.training.audio2lmk.Audio2LmkTrainer`
  in slices of ``every`` steps and redraws its loss curve after each slice (in Jupyter the figure
  is updated in place; elsewhere a progress line is printed);
* :func:`plot_mouth_opening` — mouth opening over time, truth vs methods (notebook 05 uses it too);
* :func:`side_by_side_pose_video` — predicted | true pose images, with the speech muxed in;
* :func:`log_audio2lmk_metrics` — the held-out evaluation (and training times) as the suite's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from aniportrait_lib.evaluation.audio2lmk_eval import MODEL
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.mouth import mouth_opening
from aniportrait_lib.plots import plot_loss_curve, side_by_side_video
from aniportrait_lib.training.loss_log import read_loss_log

__all__ = [
    "METRICS",
    "LOSS_WINDOW",
    "log_audio2lmk_metrics",
    "plot_mouth_opening",
    "side_by_side_pose_video",
    "train_with_live_plot",
]

LOSS_WINDOW = 10
"""Steps per moving average of the live loss curves."""


def train_with_live_plot(trainer, every: int = 25, title: str = "training loss"):
    """Train to ``trainer.config.max_steps``, redrawing the loss curve (from the trainer's ``log.csv``)
    every ``every`` steps.

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
        log = read_loss_log(trainer.log_path)
        ax.clear()
        plot_loss_curve(ax, log.losses, log.steps, window=LOSS_WINDOW)
        ax.set(xlabel="step", ylabel="L1 loss", title=title)
        ax.legend(loc="upper right", fontsize="small")
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
    """Write ``[predicted | truth]`` pose images (official drawing), labelled, as an MP4 with the speech.

    Args:
        predicted_2d / true_2d: (T, 468, 2) pixel landmarks of an image of ``size`` = (H, W).
        audio: (float samples in [-1, 1], rate), muxed as AAC.
    """
    if predicted_2d.shape != true_2d.shape:
        raise ValueError(f"predicted {predicted_2d.shape} and true {true_2d.shape} landmarks differ in shape")
    height, width = size
    panels = {
        "predicted": (draw_landmarks((width, height), points, normed=False) for points in predicted_2d),
        "truth": (draw_landmarks((width, height), points, normed=False) for points in true_2d),
    }
    return side_by_side_video(path, panels, fps, audio)


METRICS = (  # name, method (summary row), column, direction, tolerance, rel_tolerance, unit, description
    ("lve_model", MODEL, "lve", "lower", 0.005, 0.15, "cm", "lip vertex error, held-out clips"),
    ("lve_mean_mesh", "mean mesh", "lve", "equal", 0.0, 0.05, "cm", "baseline: mean training mesh"),
    ("lve_envelope", "loudness envelope", "lve", "equal", 0.0, 0.05, "cm",
     "baseline: loudness envelope → offsets (least squares)"),
    ("mouth_corr_model", MODEL, "mouth_corr", "higher", 0.05, 0.0, "",
     "mouth-opening correlation, held-out clips"),
    ("mouth_corr_envelope", "loudness envelope", "mouth_corr", "equal", 0.02, 0.0, "",
     "baseline: loudness envelope"),
    ("landmark_px_model", MODEL, "landmark_px", "lower", 0.02, 0.15, "px",
     "projected mesh vs truth (true pose)"),
    ("landmark_px_envelope", "loudness envelope", "landmark_px", "equal", 0.0, 0.05, "px",
     "baseline: loudness envelope"),
    ("landmark_px_full_model", MODEL, "landmark_px_full", "lower", 0.0, 0.3, "px",
     "projected mesh + predicted pose vs truth"),
    ("pose_std_ratio_model", MODEL, "pose_std_ratio", "equal", 0.35, 0.0, "",
     "std of predicted / true rotations (1 = as lively as the truth)"),
    ("pose_l1_model", MODEL, "pose_l1_deg", "lower", 0.0, 0.3, "°",
     "mean |rotation error| (head motion is not unique given speech)"),
    ("beat_align_model", MODEL, "beat_align", None, 0.0, 0.0, "",
     "head-velocity extrema within ±100 ms of an onset"),
    ("beat_align_truth", MODEL, "beat_align_truth", None, 0.0, 0.0, "", "the same for the true head motion"),
    ("beat_align_chance", MODEL, "beat_align_chance", None, 0.0, 0.0, "", "chance level of beat alignment"),
)  # fmt: skip
"""The held-out metrics notebook 02 logs, read from :attr:`Audio2LmkEvaluation.summary`; the baselines in
``baselines/*.json`` judge them by these names, directions and tolerances."""

_NAN_AS_ZERO = {"beat_align_model"}  # a predicted head without velocity extrema aligns with no onset
_TRAINED = {"audio2mesh": "Audio2Mesh", "audio2pose": "Audio2Pose"}  # train_seconds key → model name


def log_audio2lmk_metrics(run, summary, train_seconds: Mapping[str, float] | None = None) -> dict[str, float]:
    """Log notebook 02's :data:`METRICS` and training times with ``run.log_metric``
    (:class:`~aniportrait_lib.runner.notebook.NotebookRun`).

    Args:
        summary: :attr:`~aniportrait_lib.evaluation.audio2lmk_eval.Audio2LmkEvaluation.summary` (methods ×
            metrics means over the held-out clips).
        train_seconds: training time (s) per trained model, ``"audio2mesh"`` / ``"audio2pose"``; logged as
            ``<model>_train_seconds`` (information only). Models loaded from official weights have none.

    Returns:
        name → logged value.
    """
    logged = {}
    for key, seconds in (train_seconds or {}).items():
        if key not in _TRAINED:
            raise ValueError(f"train_seconds: unknown model {key!r}, expected one of {', '.join(_TRAINED)}")
        name = f"{key}_train_seconds"
        logged[name] = run.log_metric(name, seconds, unit="s", description=f"{_TRAINED[key]} training time")
    for name, method, column, direction, tolerance, rel, unit, description in METRICS:
        value = summary.loc[method, column]
        value = np.nan_to_num(value) if name in _NAN_AS_ZERO else value
        logged[name] = run.log_metric(
            name, value, direction=direction, tolerance=tolerance, rel_tolerance=rel, unit=unit,
            description=description,
        )  # fmt: skip
    return logged
