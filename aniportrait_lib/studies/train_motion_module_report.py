"""What notebook 04 shows of a stage-2 run: a table, a verdict in words, plots, a side-by-side video, metrics.

Everything here reads a :class:`~.train_motion_module.MotionComparison` (and the training log); nothing
is trained or generated.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aniportrait_lib.plots import plot_loss_curve, side_by_side_video
from aniportrait_lib.training.lmk2video_data import EvalClip

from .train_motion_module import STAGE1_ONLY, STAGE2, VAE_FLOOR, MotionComparison, MotionTraining

__all__ = [
    "MEASURABLE_CHANGE",
    "TABLE_COLUMNS",
    "comparison_table",
    "describe_comparison",
    "log_motion_metrics",
    "plot_flicker_over_time",
    "plot_training_loss",
    "write_side_by_side",
]

TABLE_COLUMNS = {  # column → heading (units): what the notebook's table shows, in this order
    "flicker_frame": "flicker, frame (grey levels)",
    "flicker_face": "flicker, face",
    "flicker_mouth": "flicker, mouth",
    "energy_ratio_frame": "temporal energy / truth",
    "jitter_px": "landmark jitter (px/frame²)",
    "psnr": "PSNR (dB)",
    "mouth_psnr": "mouth PSNR (dB)",
    "ssim": "SSIM",
    "landmark_px": "landmark error (px)",
    "mouth_corr": "mouth follows driving (corr)",
    "mouth_motion_ratio": "mouth motion / driving",
    "no_face_fraction": "no face found",
}

MEASURABLE_CHANGE = 0.03
"""A flicker change counts as measured when the mean moves by at least 3 % **and** every held-out clip moves
the same way: stage 1 and stage 2 share seed, noise and sampler, so a consistent sign is not chance."""


def comparison_table(comparison: MotionComparison):
    """Mean over held-out clips per method → ``pandas.DataFrame`` (rows: methods; :data:`TABLE_COLUMNS`)."""
    frame = pd.DataFrame(comparison.rows)
    table = frame.drop(columns="clip_id").groupby("method", sort=False).mean()[list(TABLE_COLUMNS)]
    table.attrs.update(clips=int(frame["clip_id"].nunique()), frames=comparison.num_frames)
    return table


def _per_clip(comparison: MotionComparison, method: str, column: str) -> np.ndarray:
    return np.array([row[column] for row in comparison.rows if row["method"] == method])


def _flicker_verdict(comparison: MotionComparison, column: str) -> tuple[str, float, int]:
    """("reduces" | "increases" | "does not measurably change", relative change, clips improved)."""
    before, after = _per_clip(comparison, STAGE1_ONLY, column), _per_clip(comparison, STAGE2, column)
    change = float(after.mean() / before.mean() - 1.0)
    improved = int((after < before).sum())
    if change <= -MEASURABLE_CHANGE and improved == len(before):
        return "reduces", change, improved
    if change >= MEASURABLE_CHANGE and improved == 0:
        return "increases", change, improved
    return "does not measurably change", change, improved


def describe_comparison(comparison: MotionComparison) -> str:
    """One paragraph (markdown) that reads the comparison: flicker first, then what it cost per frame."""
    table = comparison_table(comparison)
    one, two, floor = table.loc[STAGE1_ONLY], table.loc[STAGE2], table.loc[VAE_FLOOR]
    verdict, change, improved = _flicker_verdict(comparison, "flicker_frame")
    clips = table.attrs["clips"]
    mouth_verdict, mouth_change, _ = _flicker_verdict(comparison, "flicker_mouth")
    gap = one["flicker_frame"] - floor["flicker_frame"]
    closed = (one["flicker_frame"] - two["flicker_frame"]) / gap if gap > 0 else math.nan
    text = [
        f"**Stage 2 {verdict} flicker** on {clips} held-out clip(s) of {table.attrs['frames']} consecutive "
        f"frames: whole-frame flicker {one['flicker_frame']:.2f} → {two['flicker_frame']:.2f} grey levels "
        f"({100 * change:+.1f} %, lower on {improved} of {clips} clips); in the mouth box it "
        f"{mouth_verdict.replace('reduces', 'falls').replace('increases', 'rises')} "
        f"({one['flicker_mouth']:.2f} → {two['flicker_mouth']:.2f}, {100 * mouth_change:+.1f} %).",
        f"The VAE alone, reconstructing the true frames, flickers {floor['flicker_frame']:.2f}: stage 2 "
        f"closes {100 * closed:.0f} % of stage 1's gap to that floor."
        if np.isfinite(closed)
        else "",
    ]
    if np.isnan(one["jitter_px"]) or np.isnan(two["jitter_px"]):
        text.append("Landmark jitter is not measurable: MediaPipe finds no face in the generated frames.")
    else:
        text.append(
            f"Re-extracted landmark jitter {one['jitter_px']:.3f} → {two['jitter_px']:.3f} px/frame² "
            f"(MediaPipe on the VAE reconstructions: {floor['jitter_px']:.3f})."
        )
    if np.isfinite(one["mouth_corr"]) and np.isfinite(two["mouth_corr"]):
        text.append(
            "Smoothing must not cost the speech: the re-extracted inner-lip gap follows the driving one "
            f"with correlation {one['mouth_corr']:.2f} → {two['mouth_corr']:.2f} and "
            f"{one['mouth_motion_ratio']:.2f} → {two['mouth_motion_ratio']:.2f} of its motion "
            f"(VAE: {floor['mouth_corr']:.2f}, {floor['mouth_motion_ratio']:.2f})."
        )
    text.append(
        f"Per frame, PSNR goes {one['psnr']:.2f} → {two['psnr']:.2f} dB and mouth PSNR "
        f"{one['mouth_psnr']:.2f} → {two['mouth_psnr']:.2f} dB"
        + (
            f"; the landmark error {one['landmark_px']:.2f} → {two['landmark_px']:.2f} px."
            if np.isfinite(one["landmark_px"]) and np.isfinite(two["landmark_px"])
            else "."
        )
    )
    return " ".join(t for t in text if t)


def plot_training_loss(training: MotionTraining, window: int = 50):
    """Stage-2 loss per step and its moving average over ``window`` steps → figure."""
    fig, ax = plt.subplots(figsize=(7, 3))
    plot_loss_curve(ax, training.losses, window=window)
    ax.set(xlabel="optimizer step", ylabel="min-SNR weighted v-loss",
           title=f"stage 2: motion modules only ({training.seconds:.0f} s)")  # fmt: skip
    ax.legend(fontsize=8)
    return fig


def plot_flicker_over_time(comparison: MotionComparison, clips: list[EvalClip]):
    """Face-box flicker per transition t → t+1, one panel per held-out clip → figure."""
    fig, axes = plt.subplots(1, len(clips), figsize=(4.2 * len(clips), 3), squeeze=False, sharey=True)
    for ax, clip in zip(axes[0], clips, strict=True):
        for method in (STAGE1_ONLY, STAGE2, VAE_FLOOR):
            ax.plot(clip.frame_indices[1:], comparison.flicker[method][clip.clip_id], label=method,
                    linestyle=":" if method == VAE_FLOOR else "-")  # fmt: skip
        ax.set(title=f"held-out {clip.clip_id}", xlabel="frame t (transition t−1 → t)")
    axes[0, 0].set_ylabel("face flicker (grey levels)")
    axes[0, 0].legend(fontsize=8)
    return fig


def write_side_by_side(
    path: str | Path, clip: EvalClip, comparison: MotionComparison, fps: float,
    audio: tuple[np.ndarray, int] | None = None, min_side: int = 256,
) -> Path:  # fmt: skip
    """H.264 MP4 of ``ground truth | stage 1 only | stage 2``, labelled, each panel enlarged to ``min_side``
    (nearest neighbour, so every generated pixel stays visible), with the clip's speech if ``audio`` is given;
    written atomically (:func:`aniportrait_lib.plots.side_by_side_video`)."""
    panels = {"ground truth": clip.frames, STAGE1_ONLY: comparison.generated[STAGE1_ONLY][clip.clip_id],
              STAGE2: comparison.generated[STAGE2][clip.clip_id]}  # fmt: skip
    return side_by_side_video(path, panels, fps, audio, min_side)


def log_motion_metrics(run, comparison: MotionComparison, training: MotionTraining) -> dict[str, float]:
    """Log the comparison with ``run.log_metric`` (:class:`~aniportrait_lib.runner.notebook.NotebookRun`).

    Stage-1-only values are information (notebook 03 judges stage 1); stage-2 values and the reduction are
    judged. A jitter that cannot be measured (no face in any frame triple) is logged as the frame side.
    """
    table = comparison_table(comparison)
    side = float(next(iter(comparison.generated[STAGE2].values())).shape[1])
    rows = {"stage1": table.loc[STAGE1_ONLY], "stage2": table.loc[STAGE2], "vae": table.loc[VAE_FLOOR]}
    _, change, _ = _flicker_verdict(comparison, "flicker_frame")
    logged = {}

    def log(name: str, value: float, direction=None, tolerance=0.0, rel=0.0, unit="", description=""):
        value = side if np.isnan(value) else value
        logged[name] = run.log_metric(
            name, value, direction=direction, tolerance=tolerance, rel_tolerance=rel, unit=unit,
            description=description,
        )  # fmt: skip

    for key, row in rows.items():
        judged = "lower" if key == "stage2" else None
        log(f"flicker_{key}", row["flicker_frame"], judged, 0.3, 0.2, "grey levels",
            f"{row.name}: whole-frame flicker against the truth")  # fmt: skip
        log(f"mouth_flicker_{key}", row["flicker_mouth"], judged, 0.3, 0.2, "grey levels",
            f"{row.name}: mouth-box flicker against the truth")  # fmt: skip
        log(f"jitter_{key}", row["jitter_px"], judged, 0.05, 0.3, "px/frame²",
            f"{row.name}: re-extracted landmark acceleration minus the driving one")  # fmt: skip
        log(f"psnr_{key}", row["psnr"], "higher" if key == "stage2" else None, 1.5, 0.0, "dB",
            f"{row.name}: whole-frame PSNR")  # fmt: skip
        corr = row["mouth_corr"] if np.isfinite(row["mouth_corr"]) else 0.0  # not measurable: no follow
        log(f"mouth_corr_{key}", corr, "higher" if key == "stage2" else None, 0.1, 0.0, "",
            f"{row.name}: re-extracted inner-lip gap vs the driving one (correlation)")  # fmt: skip
    log("flicker_reduction_pct", -100 * change, "higher", 5.0, 0.0, "%",
        "whole-frame flicker, stage 2 relative to stage 1 only (positive: less flicker)")  # fmt: skip
    log("landmark_px_stage2", rows["stage2"]["landmark_px"], "lower", 0.5, 0.2, "px",
        "stage 2: re-extracted vs driving landmarks")  # fmt: skip
    log("training_seconds", training.seconds, None, 0.0, 0.0, "s", "stage-2 training time (this machine)")
    return logged
