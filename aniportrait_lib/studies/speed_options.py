"""Notebook 05's speed options: what each way of rendering faster costs in quality (issue #20, item 2).

One short clip is rendered with the full setting (the sampling settings the weights are meant for, as
notebook 05 evaluates them) and with each fast option, from the same seed and the same head motion (the
clip's true pose as a pose template). Every option is timed over the whole
:func:`~aniportrait_lib.pipelines.generate.audio_to_video` call (models already loaded, after warm-up calls)
and scored with the evaluation package's measures:

* **PSNR vs full** - :func:`~aniportrait_lib.evaluation.generation_eval.mean_psnr` of the option's frames
  against the full setting's (the full row itself: ``inf`` by definition, not computed);
* **landmark error** and **mouth-opening correlation** - MediaPipe re-extracts the face from every frame and
  :func:`~aniportrait_lib.evaluation.generation_eval.score_talking_video` compares it with the clip's truth
  (the head pose driving the video is the true one; the mouth comes from Audio2Mesh), as notebook 05's
  held-out measure does.

The options (:func:`default_speed_options`) change the sampling from outside the pipeline, so the default
path is untouched:

* ``autocast`` - the denoiser's predictions (both UNets' windows and the pose guider, the whole cost of a
  step) run under ``torch.autocast`` in bf16 (CPU or CUDA) or fp16 (CUDA only). Only
  :meth:`~aniportrait_lib.pipelines.pose2video.Pose2VideoPipeline.predict` is wrapped: the latents, the
  scheduler's update, the reference encoding and the VAE decode stay in the pipeline's dtype. (Autocasting
  the whole call would also make the CLIP embedding bf16, and the pipeline draws its noise and keeps its
  latents in that embedding's dtype.)
* ``scheduler="dpm++"`` - diffusers' ``DPMSolverMultistepScheduler`` (DPM-Solver++, 2nd order) built from
  the pipeline's DDIM configuration (:func:`dpm_solver_scheduler`), at fewer steps.
* any :class:`~aniportrait_lib.config.GenerateConfig` field: fewer DDIM steps, a smaller window overlap,
  ``keyframe_step`` (the official ``-acc``: diffuse every k-th frame, interpolate the rest).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from diffusers import DPMSolverMultistepScheduler

from aniportrait_lib.devices import DTYPE_NAMES
from aniportrait_lib.evaluation.generation_eval import mean_psnr, score_talking_video
from aniportrait_lib.pipelines.generate import audio_to_video, load_portrait
from aniportrait_lib.pipelines.stages import StageMeter, stage_key
from aniportrait_lib.video_io import read_frames

__all__ = [
    "SpeedOption",
    "SpeedStudyConfig",
    "default_speed_options",
    "dpm_solver_scheduler",
    "fast_sampling",
    "measure_speed_options",
    "plot_speed_options",
    "speed_study_config",
]

_AUTOCAST = ("bf16", "fp16")  # half-precision names of devices.DTYPE_NAMES


@dataclass(frozen=True)
class SpeedOption:
    """One way to render faster, relative to the full setting."""

    name: str
    changes: dict = field(default_factory=dict)  # GenerateConfig fields replaced (steps, keyframe_step, ...)
    autocast: str | None = None  # None, "bf16" or "fp16": torch.autocast over the denoiser's predictions
    scheduler: str = "ddim"  # "ddim" (the pipeline's own) or "dpm++" (:func:`dpm_solver_scheduler`)
    cuda_only: bool = False  # skipped (a row saying so) when the pipeline is not on a CUDA device


@dataclass(frozen=True)
class SpeedStudyConfig:
    """How large notebook 05's speed table is, per profile (each option renders ``frames`` frames)."""

    frames: int = 32  # frames rendered per option (the full setting's sampling otherwise)
    warmup_frames: int | None = None  # frames of each untimed warm-up call; None: one context window
    warmup_steps: int = 2  # denoising steps of a warm-up call (kernels and buffers are set up on the first)


_STUDY_CONFIGS = {
    "quick": SpeedStudyConfig(frames=16),  # 64², 10 steps: ~1.5 s per option
    "cpu": SpeedStudyConfig(frames=16),  # 96², 20 steps: keeps the table within ~60 s on 2 cores
    "gpu": SpeedStudyConfig(frames=48),  # 512², 25 steps: three official 16-frame windows
}


def speed_study_config(profile: str) -> SpeedStudyConfig:
    """The speed table's size for a profile name ("quick", "cpu", "gpu"; others get the defaults)."""
    return _STUDY_CONFIGS.get(profile, SpeedStudyConfig())


def default_speed_options(
    steps: int, context_overlap: int, fewer_steps: int | None = None
) -> list[SpeedOption]:
    """The full setting first, then every fast option (issue #20.2), for a full setting of ``steps``
    denoising steps and windows overlapping by ``context_overlap`` frames.

    Args:
        fewer_steps: steps of the DPM-Solver++ and fewer-step DDIM rows; default half of ``steps``
            (DPM-Solver++ at 10-15 steps is the usual stand-in for DDIM at 25).
    """
    fewer = fewer_steps or max(steps // 2, 1)
    options = [
        SpeedOption("full"),
        SpeedOption("bf16 autocast", autocast="bf16"),
        SpeedOption("fp16 autocast", autocast="fp16", cuda_only=True),
        SpeedOption(f"DPM-Solver++ {fewer} steps", {"steps": fewer}, scheduler="dpm++"),
        SpeedOption(f"DDIM {fewer} steps", {"steps": fewer}),
    ]
    if context_overlap > 0:
        options.append(SpeedOption(f"overlap 0 (of {context_overlap})", {"context_overlap": 0}))
    options += [
        SpeedOption("-acc: every 2nd frame + flow", {"keyframe_step": 2}),
        SpeedOption(
            f"bf16 + DPM-Solver++ {fewer} + -acc", {"steps": fewer, "keyframe_step": 2}, "bf16", "dpm++"
        ),
    ]
    return options


def dpm_solver_scheduler(ddim) -> DPMSolverMultistepScheduler:
    """DPM-Solver++ (2nd order, multistep) with the same noise schedule as the pipeline's DDIM scheduler.

    ``from_config`` carries the betas, ``prediction_type="v_prediction"``, ``rescale_betas_zero_snr`` and the
    "trailing" spacing over (checked here), so both sample the same timesteps (10 steps: 999, 899, …, 99).
    One difference remains: at zero terminal SNR, diffusers' DPM-Solver replaces the last ``alphas_cumprod``
    (exactly 0) with 2⁻²⁴, so its first step starts from σ/α = 4096 where DDIM's starts from infinity (the
    velocity then gives the clean sample all the same: x₀ = α·x − σ·v ≈ −v). Below 15 steps the last step
    is first order (``lower_order_final``). The pipeline calls ``step`` once per timestep on all frames, so
    the solver's history (its previous model outputs) is that of the whole video.
    """
    scheduler = DPMSolverMultistepScheduler.from_config(ddim.config, algorithm_type="dpmsolver++")
    for key in ("prediction_type", "rescale_betas_zero_snr", "timestep_spacing", "beta_schedule"):
        if scheduler.config.get(key) != ddim.config.get(key):
            raise ValueError(f"DPM-Solver++ lost the DDIM setting {key}={ddim.config.get(key)!r}")
    return scheduler


@contextmanager
def fast_sampling(pipeline, autocast: str | None = None, scheduler: str = "ddim"):
    """Within the block, ``pipeline`` samples with ``scheduler`` and its denoiser's predictions run under
    ``autocast`` ("bf16" / "fp16"); its own scheduler and ``predict`` are back afterwards (even on error)."""
    if scheduler not in ("ddim", "dpm++") or autocast not in (None, *_AUTOCAST):
        raise ValueError(f"unknown scheduler {scheduler!r} or autocast {autocast!r}")
    own_scheduler, patched = pipeline.scheduler, "predict" in vars(pipeline)
    own_predict = pipeline.predict
    try:
        if scheduler == "dpm++":
            pipeline.scheduler = dpm_solver_scheduler(own_scheduler)
        if autocast is not None:
            device_type = pipeline.denoising_unet.device.type

            def predict(*args, **kwargs):
                with torch.autocast(device_type, dtype=DTYPE_NAMES[autocast]):
                    return own_predict(*args, **kwargs)  # sums into buffers of the latents' dtype

            pipeline.predict = predict
        yield pipeline
    finally:
        pipeline.scheduler = own_scheduler
        if patched:
            pipeline.predict = own_predict
        else:
            vars(pipeline).pop("predict", None)


def _render(
    models, reference_image, truth, config, option: SpeedOption, out_path: Path
) -> tuple[float, dict]:
    """One timed ``audio_to_video`` call → (seconds, seconds per stage)."""
    meter = StageMeter()
    with fast_sampling(models.pipeline, option.autocast, option.scheduler):
        start = time.perf_counter()
        audio_to_video(
            reference_image, truth.audio_path, out_path=out_path, config=config, weights=models,
            pose_template=truth.pose, stages=meter,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    return seconds, meter.seconds()


def _warm_up(models, reference_image, truth, base, options, out_dir: Path, study: SpeedStudyConfig) -> None:
    """One short untimed call per autocast mode used (first calls set up kernels and buffers)."""
    frames = study.warmup_frames or min(base.context_frames, base.max_frames)
    config = replace(base, max_frames=frames, steps=min(study.warmup_steps, base.steps))
    for autocast in dict.fromkeys(option.autocast for option in options):
        _render(models, reference_image, truth, config, SpeedOption("warm-up", autocast=autocast),
                out_dir / "speed_warm_up.mp4")  # fmt: skip
    (out_dir / "speed_warm_up.mp4").unlink(missing_ok=True)
    out_dir.joinpath("speed_warm_up.json").unlink(missing_ok=True)


def measure_speed_options(
    models,
    reference_image: np.ndarray,
    truth,
    out_dir: str | Path,
    extractor,
    study: SpeedStudyConfig = SpeedStudyConfig(),
    options: list[SpeedOption] | None = None,
) -> pd.DataFrame:
    """Render one clip with the full setting and each fast option; time and score every video.

    Args:
        models: resolved :class:`~aniportrait_lib.pipelines.selection.GenerationModels` (with audio models);
            ``models.config`` is the full setting (its ``max_frames`` set to ``study.frames``).
        reference_image: the portrait, ``(H, W, 3)`` uint8 RGB (as given to ``audio_to_video``).
        truth: the clip's :class:`~aniportrait_lib.evaluation.generation_eval.HeldoutTruth` at the models'
            frame size and face crop: its speech and true pose drive every video, its landmarks and mesh
            score them.
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor` (MediaPipe).
        options: default :func:`default_speed_options` of the full setting; the first must change nothing.
    Returns:
        One row per option, indexed by name: ``seconds`` (whole call), ``denoising seconds``, ``speed-up``
        (full ÷ this), ``PSNR vs full (dB)``, ``landmark px`` (re-extracted vs true landmarks; NaN when no
        face was found), ``mouth corr`` (re-extracted vs true mouth opening), ``no-face share``, ``video``
        (path) and ``note`` (why a row was skipped; NaN figures then).
    """
    out_dir = Path(out_dir)
    base = replace(models.config, max_frames=study.frames)
    options = options or default_speed_options(base.steps, base.context_overlap)
    if options[0].changes or options[0].autocast or options[0].scheduler != "ddim":
        raise ValueError(f"the first option is the full setting and must change nothing; got {options[0]}")
    on_cuda = models.pipeline.denoising_unet.device.type == "cuda"
    runnable = [option for option in options if on_cuda or not option.cuda_only]
    _warm_up(models, reference_image, truth, base, runnable, out_dir, study)
    portrait = load_portrait(reference_image, base).image
    rows, full_path = {}, None
    for option in options:
        if option not in runnable:
            rows[option.name] = {"note": "skipped: no CUDA"}
            continue
        path = out_dir / f"speed_{stage_key(option.name)}.mp4"
        seconds, stages = _render(
            models, reference_image, truth, replace(base, **option.changes), option, path
        )
        full_path = full_path or path
        frames = np.stack(list(read_frames(path)))
        scores = score_talking_video(frames, portrait, truth.lmks2d, truth.mesh, truth.samples, extractor)
        rows[option.name] = {
            "seconds": seconds,
            "denoising seconds": stages.get("Lmk2Video denoising", math.nan),
            "PSNR vs full (dB)": math.inf if path == full_path else mean_psnr(path, full_path),
            "landmark px": scores.summary["landmark_px"],
            "mouth corr": scores.summary["mouth_corr"],
            "no-face share": scores.summary["no_face_fraction"],
            "video": str(path),
            "note": "",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.insert(1, "speed-up", table["seconds"].iloc[0] / table["seconds"])
    return table


def plot_speed_options(table: pd.DataFrame):
    """Seconds against PSNR vs the full setting, one labelled point per option, and each option's
    mouth-opening correlation (skipped rows left out)."""
    fig, (time_ax, mouth_ax) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    shown = table.dropna(subset=["seconds"])
    finite = shown["PSNR vs full (dB)"].replace(math.inf, np.nan)
    ceiling = np.nanmax(finite.to_numpy()) + 3 if finite.notna().any() else 40.0
    for name, row in shown.iterrows():
        psnr_db = min(row["PSNR vs full (dB)"], ceiling)
        time_ax.scatter(row["seconds"], psnr_db)
        time_ax.annotate(
            name, (row["seconds"], psnr_db), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    time_ax.set(xlabel="seconds (whole call)", ylabel="PSNR vs full (dB; full drawn at the top)")
    mouth = shown["mouth corr"].astype(float)
    mouth_ax.barh(list(shown.index), mouth.fillna(0.0).to_numpy())
    for y, value in enumerate(mouth):
        if np.isnan(value):
            mouth_ax.text(0, y, " not measurable (no face, or a still mouth)", va="center", fontsize=7)
    mouth_ax.set(xlabel="mouth-opening correlation with the truth", xlim=(min(0.0, mouth.min() - 0.1), 1))
    mouth_ax.invert_yaxis()
    return fig
