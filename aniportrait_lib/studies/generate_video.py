"""Notebook 05's study of the inference stage: every held-out mini-corpus clip generated from its speech and
scored, the metrics the runner judges, the verdict in words and the figure.

The scores themselves (:func:`~aniportrait_lib.evaluation.generation_eval.score_talking_video`, the truth of
a clip, :class:`~aniportrait_lib.evaluation.generation_eval.HeldoutEvaluation`) are metrics of the
evaluation package; generation is the pipelines'.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from aniportrait_lib.evaluation.generation_eval import (
    HeldoutEvaluation,
    TalkingVideoScores,
    heldout_truth,
    score_talking_video,
)
from aniportrait_lib.pipelines.generate import audio_to_video, load_portrait
from aniportrait_lib.video_io import read_frames

__all__ = [
    "describe_talking_video",
    "evaluate_heldout_generation",
    "log_talking_video_metrics",
    "plot_talking_video",
]


def evaluate_heldout_generation(
    weights, corpus, out_dir: str | Path, extractor, clip_ids: list[str] | None = None, upscale_to: int = 256
) -> HeldoutEvaluation:
    """Generate and score held-out mini-corpus clips the way notebook 05 measures the inference stage.

    For each clip, :func:`~aniportrait_lib.pipelines.generate.audio_to_video` renders the corpus portrait
    speaking the clip's sentence: the mouth from the speech (Audio2Mesh), the head from the clip's **true**
    pose (given as a pose template; speech does not determine head motion, so a predicted head would mostly
    measure the disagreement of two plausible motions). The video ``<clip>_true_pose.mp4`` is written to
    ``out_dir`` and scored by :func:`~aniportrait_lib.evaluation.generation_eval.score_talking_video`
    against the clip's truth.

    Args:
        weights: resolved :class:`~aniportrait_lib.pipelines.selection.GenerationModels` (with audio models).
        clip_ids: default every held-out clip of ``corpus``.
    """
    config = weights.config
    clip_ids = clip_ids or [spec.clip_id for spec in corpus.split("heldout")]
    portrait = load_portrait(corpus.reference().image, config, extractor)
    videos, scores = [], []
    for clip_id in clip_ids:
        truth = heldout_truth(corpus, clip_id, config.width, config.face_crop_scale)
        video = audio_to_video(
            corpus.reference().image, truth.audio_path, out_path=Path(out_dir) / f"{clip_id}_true_pose.mp4",
            weights=weights, pose_template=truth.pose,
        )  # fmt: skip
        frames = np.stack(list(read_frames(video)))
        scores.append(
            score_talking_video(
                frames, portrait.image, truth.lmks2d, truth.mesh, truth.samples, extractor, upscale_to
            )
        )
        videos.append(video)
    return HeldoutEvaluation(list(clip_ids), videos, scores)


_METRICS = (  # key, direction, tolerance, unit, description
    ("mouth_corr", "higher", 0.15, "", "mouth opening re-extracted from the video vs truth (correlation)"),
    ("mouth_corr_envelope", "equal", 0.05, "", "baseline: loudness envelope vs true mouth opening"),
    ("landmark_px", "lower", 0.5, "px", "re-extracted vs true landmarks (frames with a face)"),
    ("landmark_px_reference", "equal", 0.5, "px", "baseline: the portrait unchanged vs true landmarks"),
    ("no_face_fraction", "lower", 0.25, "", "share of generated frames where MediaPipe found no face"),
)


def log_talking_video_metrics(run, summary: dict[str, float], image_size: int, prefix: str = "") -> dict:
    """Record a summary (:attr:`TalkingVideoScores.summary` or :meth:`HeldoutEvaluation.summary`) with
    ``run.log_metric`` (a notebook run, :mod:`aniportrait_lib.runner`).

    Not-measurable values (no face found anywhere) are logged as finite "worst" values, since the runner
    refuses NaN: correlation 0 and a landmark error of ``image_size`` pixels.
    """
    logged = {}
    for key, direction, tolerance, unit, description in _METRICS:
        value = summary[key]
        if math.isnan(value):
            value = float(image_size) if key.startswith("landmark") else 0.0
        logged[prefix + key] = run.log_metric(
            prefix + key, value, direction=direction, tolerance=tolerance, rel_tolerance=0.2, unit=unit,
            description=description,
        )  # fmt: skip
    return logged


def describe_talking_video(summary: dict[str, float]) -> str:
    """Two sentences (markdown) that read a :func:`score_talking_video` summary against its baselines."""
    corr, envelope = summary["mouth_corr"], summary["mouth_corr_envelope"]
    px, reference = summary["landmark_px"], summary["landmark_px_reference"]
    share = 100 * (1 - summary["no_face_fraction"])
    found = f"MediaPipe found a face in {share:.0f}% of the generated frames"
    if math.isnan(px):
        return (
            f"{found}: the video cannot be scored. The baselines score a mouth-opening correlation of "
            f"{envelope:.2f} (loudness envelope) and a landmark error of {reference:.2f} px "
            "(unchanged portrait)."
        )
    mouth = (
        "not measurable (the re-extracted mouth does not move)"
        if math.isnan(corr)
        else f"{corr:.2f} vs {envelope:.2f} for the loudness envelope: "
        + ("**better** than the baseline" if corr > envelope else "**not better** than the baseline")
    )
    landmarks = f"{px:.2f} px vs {reference:.2f} px for the unchanged portrait: " + (
        "**better** than the baseline" if px < reference else "**not better** than the baseline"
    )
    return f"{found}.\n- Mouth-opening correlation with the truth: {mouth}.\n- Landmark error: {landmarks}."


def plot_talking_video(scores: TalkingVideoScores, frames, truth_frames, fps: float = 30.0, columns: int = 6):
    """Generated vs true frames (evenly spaced) over the mouth-opening and landmark-error curves → figure."""
    n = len(scores.mouth_truth)
    picks = np.linspace(0, n - 1, columns).round().astype(int)
    fig = plt.figure(figsize=(1.7 * columns, 6.2), layout="constrained")
    grid = fig.add_gridspec(4, columns, height_ratios=[1, 1, 1.1, 1.1])
    for row, (label, images) in enumerate((("generated", frames), ("truth", truth_frames))):
        for col, index in enumerate(picks):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(images[index])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{label} {index}" if col == 0 else str(index), fontsize=8)
    time_s = np.arange(n) / fps
    mouth = fig.add_subplot(grid[2, :])
    mouth.plot(time_s, scores.mouth_truth, "k", lw=2, label="truth")
    mouth.plot(time_s, scores.mouth_generated, lw=1.2, label="re-extracted from the video")
    scale = np.ptp(scores.mouth_truth) / max(np.ptp(scores.envelope), 1e-12)
    envelope = scores.mouth_truth.min() + (scores.envelope - scores.envelope.min()) * scale
    mouth.plot(time_s, envelope, lw=1, alpha=0.7, label="loudness envelope (rescaled)")
    mouth.set(ylabel="mouth opening (cm)")
    mouth.legend(loc="upper right", fontsize="small")
    error = fig.add_subplot(grid[3, :], sharex=mouth)
    error.plot(time_s, scores.landmark_px, lw=1.2, label="generated video")
    error.plot(time_s, scores.landmark_px_reference, lw=1, label="unchanged portrait")
    error.set(xlabel="time (s)", ylabel="landmark error (px)")
    error.legend(loc="upper right", fontsize="small")
    return fig
