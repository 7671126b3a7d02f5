"""The PoseGuider study of notebook 03: sizes of the three guiders, and a controlled stage-1 comparison.

Guiders: (a) AnimateAnyone single-scale, (b) AniPortrait multi-scale as released, (c) multi-scale with the
reference-pose cross-attention the paper describes (:mod:`aniportrait_lib.models.pose_guider`).

The comparison trains stage 1 three times with the same data, budget, seed, VAE and CLIP encoder - only
the guider differs - and scores held-out frames (:mod:`aniportrait_lib.evaluation.video_metrics`) against
the "reference image unchanged" baseline.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import PIL.Image
import torch
from diffusers import AutoencoderKL
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.atomic import atomic_path
from aniportrait_lib.evaluation.video_metrics import score_frames, summarize_scores
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import (
    Lmk2VideoModelConfig,
    Lmk2VideoNetworks,
    build_pose_guider,
    build_stage1_networks,
)
from aniportrait_lib.paths import weights_dir
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.plots import plot_loss_curve
from aniportrait_lib.studies.configs import Lmk2VideoProfile
from aniportrait_lib.training.checkpoint import latest_checkpoint
from aniportrait_lib.training.lmk2video import LOSS_LOG, Stage1Trainer
from aniportrait_lib.training.lmk2video_cache import FrameCache
from aniportrait_lib.training.lmk2video_data import ArraySource, EvalClip, FramePairDataset, to_unit_range
from aniportrait_lib.training.lmk2video_vae import calibrate_latent_scale, pretrain_vae
from aniportrait_lib.training.loss_log import read_loss_log
from aniportrait_lib.training.optim import torch_threads
from aniportrait_lib.weights.layout import check_weights, format_report

__all__ = [
    "BASELINE",
    "FINAL_MODEL",
    "GUIDER_NAMES",
    "VAE_CEILING",
    "FrozenModels",
    "GuiderStudy",
    "describe_study",
    "plot_losses",
    "plot_pose_features",
    "run_guider_study",
    "study_table",
    "evaluate_heldout",
    "generate_clip",
    "guider_size_table",
    "log_study_metrics",
    "plot_sample_grid",
    "prepare_frozen_models",
    "train_final_model",
    "guider_trainer",
    "stage1_dry_run",
    "train_guider",
    "vae_reconstruction",
]

GUIDER_NAMES = {
    "a": "(a) single-scale (AnimateAnyone)",
    "b": "(b) multi-scale, as released",
    "c": "(c) multi-scale + ref cross-attn (paper)",
}


def guider_size_table(model: Lmk2VideoModelConfig, image_size: int) -> list[dict]:
    """Parameters and feature-map shapes of guiders a, b, c at ``model``'s size, built on the meta device.

    Returns one row per guider: ``guider``, ``parameters``, ``state_elements`` (parameters + BatchNorm
    buffers: what a ``.pth`` holds) and ``features`` (list of ``(C, h, w)``).
    """
    rows = []
    for kind in GUIDER_NAMES:
        with torch.device("meta"):
            guider = build_pose_guider(replace(model, guider=kind)).eval()
            pose = torch.empty(1, 3, 1, image_size, image_size)
            features = guider(pose, torch.empty(1, 3, image_size, image_size))
        shapes = [(f.shape[1], f.shape[3], f.shape[4]) for f in features]
        parameters = sum(p.numel() for p in guider.parameters())
        elements = parameters + sum(b.numel() for b in guider.buffers())  # = the .pth's numbers
        rows.append({"guider": GUIDER_NAMES[kind], "parameters": parameters, "state_elements": elements,
                     "features": shapes})  # fmt: skip
    return rows


@dataclass
class FrozenModels:
    """The frozen image models shared by every run of the study."""

    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    vae_losses: list[float]  # pre-training loss per step (empty for real weights)
    latent_scale: float  # factor folded into the VAE so that 0.18215·latents has unit std
    seconds: float
    unet_init: Path | None = None  # SD1.5 UNet folder both UNets start from (None: random, small profiles)
    frame_cache: FrameCache | None = None  # the two models' outputs per training frame (small profiles)


VAE_FIT_FRAMES = 20_000
"""Most training frames the small VAE is pre-trained on (evenly spaced; the mini corpus has fewer, so all)."""


def prepare_frozen_models(
    dataset: FramePairDataset,
    profile: Lmk2VideoProfile,
    seed: int = 0,
    weights_folder: str | Path | None = None,
) -> FrozenModels:
    """Frozen VAE + CLIP encoder for the study (and, at paper scale, the SD1.5 UNet to start from).

    Small profiles (``profile.vae.steps > 0``): a small VAE pre-trained on the training frames and
    calibrated, and a random tiny CLIP encoder; for training frames held in memory (the mini corpus) also
    what the two make of each frame (:class:`~aniportrait_lib.training.lmk2video_cache.FrameCache`), which
    every run of the study reads instead of encoding its frames at every step. Otherwise the real weights
    from ``weights_folder`` (default: the kit's weights folder, official layout): ``sd-vae-ft-mse``, the
    sd-image-variations ``image_encoder`` and ``stable-diffusion-v1-5/unet``.

    Raises:
        FileNotFoundError: real weights are needed and some are missing (the message lists them).
    """
    start = time.perf_counter()
    if not profile.vae.steps:
        folder = Path(weights_folder) if weights_folder is not None else weights_dir()
        needed = [
            s for s in check_weights(folder) if s.component.key in ("sd15_unet", "vae", "image_encoder")
        ]
        if not all(s.present for s in needed):
            raise FileNotFoundError(
                f"profile {profile.name!r} trains from the real pretrained weights:\n"
                + format_report(needed, folder)
            )
        paths = {s.component.key: folder / s.component.path for s in needed}
        vae = build_vae(folder=paths["vae"]).requires_grad_(False).eval()
        encoder = build_clip_image_encoder(folder=paths["image_encoder"]).requires_grad_(False).eval()
        return FrozenModels(vae, encoder, [], 1.0, time.perf_counter() - start, paths["sd15_unet"])
    torch.manual_seed(seed)
    vae = build_vae({**profile.model.vae, "sample_size": dataset.image_size})
    frames, lmks = dataset.source.sample_frames(VAE_FIT_FRAMES)
    losses = pretrain_vae(vae, frames, profile.vae, lmks)
    scale = calibrate_latent_scale(vae, frames[:: max(1, len(frames) // 64)])
    encoder = build_clip_image_encoder(profile.model.clip).requires_grad_(False).eval()
    cache = None
    if isinstance(dataset.source, ArraySource):
        with torch_threads(profile.vae.num_threads):
            cache = FrameCache.build(dataset, vae.eval(), encoder)
    return FrozenModels(vae.eval(), encoder, losses, scale, time.perf_counter() - start, frame_cache=cache)


def stage1_dry_run(
    profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels, out_dir: str | Path
) -> dict:
    """What the study would train, up to its first optimizer step: guider (b)'s trainer reads one batch.

    For notebook 03's ``dry_run`` (e.g. the ``gpu`` profile on a machine that cannot take a full-size step).
    """
    trainer = guider_trainer("b", profile, dataset, frozen, out_dir)
    budget = {"guiders": "a, b, c", "steps per guider": profile.stage1.max_steps,
              "steps of the kit's model (b)": max(profile.final_steps, profile.stage1.max_steps),
              "UNets from": frozen.unet_init or "random (small profile)"}  # fmt: skip
    return budget | trainer.dry_run()


def guider_trainer(
    kind: str, profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels, out_dir: str | Path
) -> Stage1Trainer:
    """A stage-1 trainer of fresh networks with guider ``kind`` (initialised with seed ``stage1.seed``)."""
    torch.manual_seed(profile.stage1.seed)
    networks = build_stage1_networks(replace(profile.model, guider=kind), frozen.unet_init)
    return Stage1Trainer(
        networks, frozen.vae, frozen.image_encoder, dataset, profile.stage1, out_dir, frozen.frame_cache
    )


def train_guider(
    kind: str, profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels, out_dir: str | Path
) -> tuple[Lmk2VideoNetworks, list[float], float]:
    """Stage 1 with guider ``kind`` (fresh networks, seed ``stage1.seed``) → (networks, losses, seconds).

    A run that ``out_dir`` already holds to the end (e.g. trained by :func:`start_background_runs`) is
    loaded; its losses and training time are then read from its log.
    """
    trainer = guider_trainer(kind, profile, dataset, frozen, out_dir)
    trainer.resume()
    if trainer.step >= trainer.config.max_steps:
        log = read_loss_log(trainer.log_path)
        return trainer.unwrapped, log.losses.tolist(), float(log.seconds.sum())
    start = time.perf_counter()
    losses = trainer.train()
    return trainer.unwrapped, losses, time.perf_counter() - start


def _train_runs(kinds: str, profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels,
                out_dir: str) -> None:  # fmt: skip
    """A background process's work: the study runs of ``kinds``, one after the other."""
    torch.set_num_threads(profile.stage1.num_threads or 1)
    quiet = replace(profile, stage1=replace(profile.stage1, progress=False))
    for kind in kinds:
        train_guider(kind, quiet, dataset, frozen, Path(out_dir) / f"guider_{kind}")


def start_background_runs(
    kinds: str,
    profile: Lmk2VideoProfile,
    dataset: FramePairDataset,
    frozen: FrozenModels,
    out_dir: str | Path,
) -> multiprocessing.process.BaseProcess:
    """Train the study runs of ``kinds`` in a second process (spawned: a fresh interpreter, which
    receives the dataset and the frozen models); :func:`join_background_runs` waits for it. The runs are
    those :func:`train_guider` would train here, checkpoints and logs in ``out_dir/guider_<kind>``."""
    process = multiprocessing.get_context("spawn").Process(
        target=_train_runs, args=(kinds, profile, dataset, frozen, str(out_dir)), daemon=True,
        name=f"stage-1 runs {', '.join(kinds)}",
    )  # fmt: skip
    process.start()
    return process


def join_background_runs(process: multiprocessing.process.BaseProcess) -> None:
    """Wait for :func:`start_background_runs`' process.

    Raises:
        RuntimeError: it failed (its traceback is in the kernel's log); its finished runs stay on disk.
    """
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the background process '{process.name}' failed (exit code {process.exitcode})")


def _continue_run(kind: str, profile: Lmk2VideoProfile, source: Path, target: Path) -> Lmk2VideoProfile:
    """Seed ``target`` with ``source``'s last checkpoint and log (once) → the profile of the longer run."""
    steps = max(profile.final_steps, profile.stage1.max_steps)
    if steps - profile.final_lr_decay_steps < profile.stage1.max_steps:
        raise ValueError(
            f"final_lr_decay_steps={profile.final_lr_decay_steps} would reach into the study's "
            f"{profile.stage1.max_steps} steps: the longer run would no longer continue the study run"
        )
    start = latest_checkpoint(source)
    if latest_checkpoint(target) is None and start is not None:
        for path in (start, source / LOSS_LOG):
            if path.is_file():
                with atomic_path(target / path.name) as tmp:
                    shutil.copyfile(path, tmp)
    stage1 = replace(
        profile.stage1, max_steps=steps, checkpoint_every=steps, lr_decay_steps=profile.final_lr_decay_steps
    )
    return replace(profile, stage1=stage1)


def train_final_model(
    study: GuiderStudy, profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels,
    clips: list[EvalClip], extractor, out_dir: str | Path, kind: str = "b",
) -> int:  # fmt: skip
    """Train guider ``kind``'s study run on to ``profile.final_steps`` and score it as :data:`FINAL_MODEL`.

    The longer run lives in ``out_dir/final_<kind>`` and starts from a copy of the study run's last
    checkpoint (same data order, same RNG stream: exactly what one longer run would give); the study's
    own folder is never written to, so re-running the notebook reproduces both. Adds the rows, frames,
    networks (key ``"final"``), losses and seconds to ``study``; returns the step reached.
    """
    source, target = Path(out_dir) / f"guider_{kind}", Path(out_dir) / f"final_{kind}"
    longer = _continue_run(kind, profile, source, target)
    networks, _, _ = train_guider(kind, longer, dataset, frozen, target)
    rows, study.generated[FINAL_MODEL] = evaluate_heldout(
        networks, frozen, profile, clips, extractor, FINAL_MODEL
    )
    study.rows += rows
    study.networks["final"] = networks
    log = read_loss_log(target / LOSS_LOG)  # the whole curve: the study run's rows, then this run's
    study.losses["final"], study.seconds["final"] = log.losses.tolist(), float(log.seconds.sum())
    return longer.stage1.max_steps


def generate_clip(pipeline, clip: EvalClip, profile: Lmk2VideoProfile) -> np.ndarray:
    """Frames ``(N, S, S, 3)`` uint8 for the clip's target poses, from its reference frame."""
    cfg, size = profile.evaluation, clip.ref_image.shape[0]
    with torch_threads(cfg.num_threads):
        video = pipeline(
            PIL.Image.fromarray(clip.ref_image), list(clip.poses), clip.ref_pose, width=size, height=size,
            num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale,
            generator=torch.Generator().manual_seed(cfg.seed),
        ).videos  # fmt: skip
    return (video[0].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)


def evaluate_heldout(
    networks: Lmk2VideoNetworks | None,
    frozen: FrozenModels,
    profile: Lmk2VideoProfile,
    clips: list[EvalClip],
    extractor,
    method: str,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Score one method on the held-out clips → (one summary row per clip, generated frames per clip).

    ``networks=None`` scores the baseline: the reference frame, unchanged, for every target frame.
    """
    pipeline = None
    if networks is not None:
        pipeline = Pose2VideoPipeline.from_stage1(
            networks, frozen.vae, frozen.image_encoder, profile.model.unet, profile.evaluation.scheduler
        )
    rows, generated = [], {}
    for clip in clips:
        if pipeline is None:
            frames = np.repeat(clip.ref_image[None], len(clip.frames), axis=0)
        else:
            frames = generate_clip(pipeline, clip, profile)
        generated[clip.clip_id] = frames
        scores = score_frames(frames, clip.frames, clip.lmks2d, extractor, profile.evaluation.upscale_to)
        rows.append({"method": method, "clip_id": clip.clip_id, **summarize_scores(scores)})
    return rows, generated


def vae_reconstruction(frozen: FrozenModels, clips: list[EvalClip]) -> dict[str, np.ndarray]:
    """Held-out target frames through the VAE (the ceiling of any latent model), per clip."""
    out = {}
    with torch.no_grad():
        for clip in clips:
            latents = frozen.vae.encode(to_unit_range(clip.frames)).latent_dist.mean
            images = frozen.vae.decode(latents).sample.clamp(-1, 1)
            out[clip.clip_id] = ((images + 1) * 127.5).round().byte().movedim(1, -1).numpy()
    return out


def plot_sample_grid(clip: EvalClip, generated: dict[str, np.ndarray], columns: int = 4):
    """Rows: pose, ground truth, then each method's frames for one clip → matplotlib figure."""
    n = min(columns, len(clip.frames))
    rows = [("pose", clip.poses), ("ground truth", clip.frames)] + [
        (k, v[clip.clip_id]) for k, v in generated.items()
    ]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n + 1.5, 1.6 * len(rows)), squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(n):
            axes[r, c].imshow(frames[c])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"held-out {clip.clip_id}, frames {[int(i) for i in clip.frame_indices[:n]]}")
    return fig


@dataclass
class GuiderStudy:
    """Results of :func:`run_guider_study`: per-clip rows, frames, losses and networks per method."""

    rows: list[dict]  # one row per (method, clip): the summary of :func:`summarize_scores`
    generated: dict[str, dict[str, np.ndarray]]  # method → clip id → frames (N, S, S, 3)
    losses: dict[str, list[float]]  # guider → training loss per step
    seconds: dict[str, float]  # guider → training wall time
    networks: dict[str, Lmk2VideoNetworks]


BASELINE = "reference unchanged"
VAE_CEILING = "VAE reconstruction (ceiling)"
FINAL_MODEL = "(b) trained longer: the kit's stage-1 model"


def run_guider_study(
    kinds: str, profile: Lmk2VideoProfile, dataset: FramePairDataset, frozen: FrozenModels,
    clips: list[EvalClip], extractor, out_dir: str | Path, final_kind: str = "b",
) -> GuiderStudy:  # fmt: skip
    """Train stage 1 once per guider in ``kinds`` (same data, budget, seed) and score held-out clips.

    Also scores the unchanged-reference baseline and the VAE reconstruction of the true frames (the
    best any model working in this VAE's latent space could do).

    With ``profile.study_processes`` > 1 the runs other than guider ``final_kind``'s train in a second
    process while this one trains ``final_kind``'s run and then the longer run of
    :func:`train_final_model` (which then finds it done); the scoring waits for both.
    """
    if profile.study_processes > 1 and final_kind in kinds and len(kinds) > 1:
        others = "".join(k for k in kinds if k != final_kind)
        background = start_background_runs(others, profile, dataset, frozen, out_dir)
        try:
            source = Path(out_dir) / f"guider_{final_kind}"
            train_guider(final_kind, profile, dataset, frozen, source)
            target = Path(out_dir) / f"final_{final_kind}"
            longer = _continue_run(final_kind, profile, source, target)
            train_guider(final_kind, longer, dataset, frozen, target)
        finally:
            join_background_runs(background)
    study = GuiderStudy([], {}, {}, {}, {})
    baseline_rows, study.generated[BASELINE] = evaluate_heldout(
        None, frozen, profile, clips, extractor, BASELINE
    )
    study.generated[VAE_CEILING] = vae_reconstruction(frozen, clips)
    for clip in clips:
        scores = score_frames(study.generated[VAE_CEILING][clip.clip_id], clip.frames, clip.lmks2d, extractor,
                              profile.evaluation.upscale_to)  # fmt: skip
        study.rows.append({"method": VAE_CEILING, "clip_id": clip.clip_id, **summarize_scores(scores)})
    study.rows += baseline_rows
    for kind in kinds:
        networks, study.losses[kind], study.seconds[kind] = train_guider(
            kind, profile, dataset, frozen, Path(out_dir) / f"guider_{kind}"
        )
        rows, study.generated[GUIDER_NAMES[kind]] = evaluate_heldout(
            networks, frozen, profile, clips, extractor, GUIDER_NAMES[kind]
        )
        study.rows += rows
        study.networks[kind] = networks
    return study


def study_table(study: GuiderStudy):
    """Mean over held-out clips per method → ``pandas.DataFrame`` (rows: methods)."""
    table = pd.DataFrame(study.rows).drop(columns="clip_id").groupby("method", sort=False).mean()
    table.attrs["image_size"] = int(next(iter(study.generated[BASELINE].values())).shape[1])
    return table


_ON_PAR = {"landmark_px": 0.03, "psnr": 0.2, "mouth_psnr": 0.2}  # |difference| below: "on par" (px / dB)


def _verdict(value: float, baseline: float, column: str, higher: bool) -> str:
    if np.isnan(value) or np.isnan(baseline):
        return "not measurable: no face found"
    if abs(value - baseline) < _ON_PAR[column]:
        return "on par"
    return "better" if (value > baseline) == higher else "worse"


def describe_study(table) -> str:
    """A few sentences (markdown) that read the table: best guider, and each guider against the baseline.

    Differences below 0.03 px (landmarks) or 0.2 dB (PSNR) are called "on par": they are within the
    spread between held-out clips at these sizes.
    """
    models = [m for m in table.index if m not in (BASELINE, VAE_CEILING)]
    guiders = [m for m in models if m != FINAL_MODEL]
    base, ceiling = table.loc[BASELINE], table.loc[VAE_CEILING]
    lines = []
    if guiders and table.loc[guiders, "landmark_px"].notna().any():
        best = table.loc[guiders, "landmark_px"].idxmin()
        lines.append(
            f"Lowest landmark error among the guiders: **{best}** ({table.loc[best, 'landmark_px']:.2f} px)."
        )
    for name in models:
        row = table.loc[name]
        verdicts = [
            f"{label} {row[column]:.2f} vs {base[column]:.2f} "
            f"({_verdict(row[column], base[column], column, higher)})"
            for column, label, higher in (("landmark_px", "landmark error", False), ("psnr", "PSNR", True),
                                          ("mouth_psnr", "mouth PSNR", True))
        ]  # fmt: skip
        lines.append(
            f"- {name}: "
            + "; ".join(verdicts)
            + f"; no face in {100 * row['no_face_fraction']:.0f}% of frames."
        )
    lines.append(
        f"The VAE alone reconstructs the true frames at {ceiling['psnr']:.1f} dB "
        f"(baseline {base['psnr']:.1f} dB): "
        + (
            "no model in this latent space can beat the baseline's PSNR."
            if ceiling["psnr"] <= base["psnr"] + 0.2
            else "the latent space leaves room to beat the baseline."
        )  # fmt: skip
    )
    return "\n".join(lines)


def plot_pose_features(guider, pose: np.ndarray):
    """The pose image and the mean |activation| of each feature map the guider adds → figure."""
    images = to_unit_range(pose)[None, :, None]  # (1, 3, 1, S, S)
    guider = guider.eval()
    with torch.no_grad():
        features = guider(images, images[:, :, 0])
    fig, axes = plt.subplots(1, 1 + len(features), figsize=(2.2 * (1 + len(features)), 2.4))
    axes[0].imshow(pose)
    axes[0].set_title("pose image")
    for k, (ax, feature) in enumerate(zip(axes[1:], features, strict=True)):
        ax.imshow(feature[0, :, 0].abs().mean(0).numpy(), cmap="magma")
        ax.set_title(f"f{k} {tuple(feature.shape[1:2]) + tuple(feature.shape[3:])}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


def plot_losses(study: GuiderStudy, window: int = 10):
    """Training loss per guider (moving average over ``window`` steps) → figure."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for kind, losses in study.losses.items():
        style = {"ls": "--", "lw": 1} if kind == "final" else {}
        plot_loss_curve(
            ax, losses, window=window, label=GUIDER_NAMES.get(kind, FINAL_MODEL), raw=False, **style
        )
    ax.set(xlabel="optimizer step", ylabel="min-SNR weighted v-loss")
    ax.legend(fontsize=8)
    return fig


_METRICS = (  # column, direction, absolute tolerance, unit, description
    ("landmark_px", "lower", 0.5, "px", "re-extracted vs driving landmarks (frames with a face)"),
    ("no_face_fraction", "lower", 0.25, "", "share of frames where MediaPipe found no face"),
    ("psnr", "higher", 1.5, "dB", "whole-frame PSNR vs ground truth"),
    ("mouth_psnr", "higher", 1.5, "dB", "mouth-box PSNR vs ground truth"),
    ("ssim", "higher", 0.05, "", "whole-frame SSIM vs ground truth"),
    ("mouth_ssim", "higher", 0.05, "", "mouth-box SSIM vs ground truth"),
)


def log_study_metrics(run, table) -> dict[str, float]:
    """Log every method's means with ``run.log_metric`` as ``<key>_<column>`` (key: a, b, c, baseline, vae).

    A landmark error with no face found anywhere is logged as the frame side in pixels (a finite "worst").
    """
    logged = {}
    for method, row in table.iterrows():
        key = {BASELINE: "baseline", VAE_CEILING: "vae", FINAL_MODEL: "final"}.get(method) or method[1]
        for column, direction, tolerance, unit, description in _METRICS:
            value = row[column]
            if np.isnan(value):
                value = float(table.attrs.get("image_size", 100))
            name = f"{key}_{column}"
            logged[name] = run.log_metric(
                name, value, direction=direction, tolerance=tolerance, rel_tolerance=0.2, unit=unit,
                description=f"{method}: {description}",
            )  # fmt: skip
    return logged
