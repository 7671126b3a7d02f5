"""Training Lmk2Video stage 1 (AniPortrait §3.2, official ``train_stage_1.py``, spec §4) on accelerate.

One optimizer step, as the official recipe (every constant is a field of :class:`Stage1TrainConfig`)::

    latents     = VAE.encode(target).sample() · 0.18215            ref_latents likewise (frozen VAE)
    noise       = randn + noise_offset · randn(B, C, 1, 1)          t ~ U{0 … 999}
    noisy       = scheduler.add_noise(latents, noise, t)            target = velocity (v-prediction)
    drop        = rand() < uncond_ratio   (whole batch)             → CLIP pixels zeroed, no reference UNet
    context     = CLIP(clip_pixels).image_embeds  (B, 1, C)         (frozen)
    bank        = reference_unet(ref_latents, t=0, context)         (reference attention writers)
    features    = pose_guider(pose, ref_pose)                       (added by forward hooks)
    prediction  = denoiser(noisy, t, context)
    loss        = mean_b[ min(SNR_b+1, γ)/(SNR_b+1) · MSE_b(prediction, velocity) ]

Kit option ``mouth_weight`` (0 = official): ``MSE_b`` becomes a weighted mean whose weights are 1 plus
``mouth_weight`` times a bump over the target frame's lips (:func:`~.lmk2video_data.mouth_weight_map` at
latent resolution), so the few latent pixels that carry speech count for more than their area.

Trainable: the whole denoiser (2-D, no motion modules), the reference UNet except ``up_blocks.3``, the
pose guider. Checkpoints (:mod:`.checkpoint`) hold all three networks in one module, the optimizer, the
LR scheduler and the step; the samples and every random draw (drop, t, latent samples, noise) are functions
of the seed and the step (:mod:`.sampling`), so a resumed run ends with the same weights as an
uninterrupted one, and N processes (``accelerate launch``) train on disjoint shards whose union is what one
process with N times the batch would see. Only the main process writes checkpoints and the loss log.
Under FSDP2 (networks sharded across the processes, :mod:`.sharding`) checkpoints and exports are gathered
first, so they are the files one process would write, and a run resumes under FSDP, DDP or one process.
Checkpoints also record a signature of the fixed models (VAE, image encoder; in stage 2 also the stage-1
networks), and a resume against other ones is refused: the kit's small VAE is re-trained whenever notebook
03 runs, and a changed recipe, torch build or thread count gives another VAE that the saved networks were
not fitted to. The networks and their wiring are :mod:`aniportrait_lib.models.lmk2video`'s; exports in the
kit and official formats live in :mod:`aniportrait_lib.weights.kit_lmk2video`.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import DistributedType
from diffusers import AutoencoderKL, UNet2DConditionModel
from einops import rearrange
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import CLIPVisionModelWithProjection

from aniportrait_lib.models.image_models import VAE_SCALING_FACTOR
from aniportrait_lib.models.lmk2video import Lmk2VideoNetworks
from aniportrait_lib.models.scheduler import build_scheduler
from aniportrait_lib.training.loss_log import append_loss_row, truncate_loss_log

from .checkpoint import (
    latest_checkpoint,
    load_training_state,
    same_signature,
    save_training_state,
    state_signature,
)
from .lmk2video_cache import FrameCache, image_models_state
from .lmk2video_config import Stage1TrainConfig
from .lmk2video_data import FramePairDataset, mouth_weight_map
from .optim import build_optimizer, clip_grad_norm_float64, lr_factor, min_snr_weights, torch_threads
from .sampling import PositionSampler, Shard, StepDraws, build_accelerator
from .sharding import full_model_state, full_optimizer_state, is_sharded, meta_copy, whole_module

__all__ = ["LOSS_LOG", "Stage1Trainer"]


LOSS_LOG = "log.csv"
"""File name of a trainer's loss log inside its output folder."""

TRACKER_DIR = "trackers"
"""Sub-folder of a trainer's output folder for accelerate's trackers (TensorBoard event files)."""

PROCESSES_KEY = "num_processes"
"""Checkpoint ``extra`` key: the number of processes of the run that wrote it."""

FIXED_KEY = "fixed_models"
"""Checkpoint ``extra`` key: the :func:`~.checkpoint.state_signature` of the models a trainer keeps fixed."""


class Stage1Trainer:
    """Stage-1 training with exact resume.

    Args:
        networks: from :func:`~aniportrait_lib.models.lmk2video.build_stage1_networks` (or loaded weights).
        vae: frozen ``AutoencoderKL`` (latents × 0.18215). image_encoder: frozen CLIP image encoder.
        dataset: :class:`FramePairDataset` at ``config.image_size``.
        config: the recipe. output_dir: ``checkpoint-*.pt``, ``latest`` and ``log.csv`` go here.
        frame_cache: what ``vae`` and ``image_encoder`` make of each frame of ``dataset``'s source, computed
            once (:class:`~.lmk2video_cache.FrameCache`); ``None``: encode the frames at every step.
    """

    fixed_parts: tuple[str, ...] = ("VAE", "image encoder")
    """What :meth:`fixed_state` covers, for messages."""

    def __init__(
        self,
        networks: Lmk2VideoNetworks,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModelWithProjection,
        dataset: FramePairDataset,
        config: Stage1TrainConfig,
        output_dir: str | Path,
        frame_cache: FrameCache | None = None,
    ):
        self._check_denoiser(networks)
        if dataset.image_size != config.image_size:
            raise ValueError(
                f"dataset frames are {dataset.image_size} px, config.image_size is {config.image_size}"
            )
        if frame_cache is not None:
            self._check_frame_cache(frame_cache, dataset, vae, image_encoder)
            dataset = copy.copy(dataset)  # the caller's dataset keeps its CLIP inputs
            dataset.clip_pixels = False
        self.config, self.dataset, self.output_dir = config, dataset, Path(output_dir)
        self.frame_cache = frame_cache
        self.accelerator = build_accelerator(
            config.cpu,
            config.mixed_precision,
            config.report_to,
            self.output_dir / TRACKER_DIR,
            shardable=True,
        )
        self.shard = Shard.of(self.accelerator)
        self.vae = vae.requires_grad_(False).eval().to(self.accelerator.device)
        self.image_encoder = image_encoder.requires_grad_(False).eval().to(self.accelerator.device)
        self.noise_scheduler = build_scheduler(config.scheduler)
        self.select_trainable(networks)
        self.fixed_signature = state_signature(self.fixed_state(networks))
        if config.gradient_checkpointing:
            networks.denoising_unet.enable_gradient_checkpointing()
            networks.reference_unet.enable_gradient_checkpointing()
        trainable = [p for p in networks.parameters() if p.requires_grad]
        optimizer = build_optimizer(trainable, config)
        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(k, config))
        # FSDP: a weightless copy to put the gathered weights back into for exports (whole_networks)
        self._skeleton = (
            meta_copy(networks) if self.accelerator.distributed_type == DistributedType.FSDP else None
        )
        # the scheduler is not prepared: accelerate would step it once per process, and the warm-up and
        # decay are counted in optimizer steps whatever the number of processes
        self.networks, self.optimizer = self.accelerator.prepare(networks, optimizer)
        self.lr_scheduler = lr_scheduler
        self.step = 0

    @staticmethod
    def _check_denoiser(networks: Lmk2VideoNetworks) -> None:
        if not isinstance(networks.denoising_unet, UNet2DConditionModel):
            raise ValueError(
                "stage 1 trains the 2-D denoiser (build_image_denoising_unet), not a motion UNet"
            )

    @staticmethod
    def _check_frame_cache(cache: FrameCache, dataset: FramePairDataset, vae, image_encoder) -> None:
        if cache.source is not dataset.source:
            raise ValueError("the frame cache was built from another dataset's frames than the one given")
        if not same_signature(cache.signature, state_signature(image_models_state(vae, image_encoder))):
            raise ValueError("the frame cache was built with other VAE or image encoder weights than these")

    def select_trainable(self, networks: Lmk2VideoNetworks) -> None:
        """Stage 1: everything except the reference UNet's ``reference_frozen`` prefixes."""
        networks.requires_grad_(True)
        for name, parameter in networks.reference_unet.named_parameters():
            parameter.requires_grad_(not any(name.startswith(p) for p in self.config.reference_frozen))

    def fixed_state(self, networks: Lmk2VideoNetworks) -> dict[str, torch.Tensor]:
        """The fixed models the trained weights are fitted to (stage 1: the VAE and the image encoder).

        Their signature goes into every checkpoint; :meth:`resume` refuses a checkpoint made with others.
        """
        return image_models_state(self.vae, self.image_encoder)

    def train_mode(self) -> None:
        """Modes for an optimizer step (stage 1: all networks in training mode)."""
        self.networks.train()

    @property
    def log_path(self) -> Path:
        return self.output_dir / LOSS_LOG

    @property
    def unwrapped(self) -> Lmk2VideoNetworks:
        """The networks without accelerate's wrapper (under FSDP2: their shards)."""
        return self.accelerator.unwrap_model(self.networks)

    def whole_networks(self) -> Lmk2VideoNetworks | None:
        """The trained networks with whole weights, for an exporter: :attr:`unwrapped` on one process or
        under DDP; under FSDP2 a collective (every process calls it) that gives the main process a copy
        with the gathered weights and the others ``None``."""
        return whole_module(self.unwrapped, self._skeleton)

    def draws(self, step: int, micro: int = 0) -> StepDraws:
        """The random draws of micro-batch ``micro`` of step ``step`` (:mod:`.sampling`)."""
        return StepDraws(self.config.seed, step, micro, self.shard)

    @torch.no_grad()
    def _sample_latents(self, pixels: torch.Tensor, draws: StepDraws) -> torch.Tensor:
        """VAE latents ``mean + std · ε`` (the official ``.sample()``) with ε from ``draws``, unscaled.

        Pixels ``(B, 3, H, W)`` give ``(B, 4, h, w)``; clips ``(B, 3, F, H, W)`` give ``(B, 4, F, h, w)``.
        """
        folded = rearrange(pixels, "b c f h w -> (b f) c h w") if pixels.ndim == 5 else pixels
        dist = self.vae.encode(folded).latent_dist
        mean, std = dist.mean, dist.std
        if pixels.ndim == 5:
            mean, std = (rearrange(x, "(b f) c h w -> b c f h w", b=len(pixels)) for x in (mean, std))
        return mean + std * draws.normal(tuple(mean.shape)).to(mean)

    def _cached_latents(self, frame_ids: torch.Tensor, draws: StepDraws) -> torch.Tensor:
        """:meth:`_sample_latents` of the frames ``frame_ids`` (``(B,)`` or ``(B, F)``) from the cache."""
        mean, std = (x.to(self.accelerator.device) for x in self.frame_cache.moments(frame_ids))
        return mean + std * draws.normal(tuple(mean.shape)).to(mean)

    @torch.no_grad()
    def encode(self, batch: dict[str, torch.Tensor], drop: bool, draws: StepDraws):
        """→ target latents, ref latents (sampled × 0.18215) and CLIP context ``(B, 1, C)``.

        With a frame cache, the VAE posteriors and CLIP embeddings are looked up by ``batch["frame_ids"]``
        (targets, then the reference) instead of computed; the draws are the same either way.
        """
        device = self.accelerator.device
        if self.frame_cache is not None:
            ids = batch["frame_ids"]
            targets = ids[:, :-1] if batch["pixel_values"].ndim == 5 else ids[:, 0]
            latents = self._cached_latents(targets, draws)
            ref_latents = self._cached_latents(ids[:, -1], draws)
            context = self.frame_cache.context(ids[:, -1], drop).to(device)
        else:
            latents = self._sample_latents(batch["pixel_values"].to(device), draws)
            ref_latents = self._sample_latents(batch["ref_pixel_values"].to(device), draws)
            clip_pixels = batch["clip_pixels"].to(device) * (0.0 if drop else 1.0)  # zeroed pixels
            context = self.image_encoder(clip_pixels).image_embeds.unsqueeze(1)
        return latents * VAE_SCALING_FACTOR, ref_latents * VAE_SCALING_FACTOR, context

    def loss(self, batch: dict[str, torch.Tensor], draws: StepDraws | None = None) -> torch.Tensor:
        """Min-SNR-weighted v-prediction loss of one micro-batch.

        The drop, the timesteps, the latent samples and the noise come from ``draws`` (default: those of
        micro-batch 0 of the current step), in this order, so they follow the step, not the process.
        """
        cfg, device = self.config, self.accelerator.device
        draws = draws or self.draws(self.step)
        rows = len(batch["pixel_values"])
        drop = draws.uniform() < cfg.uncond_ratio
        timesteps = draws.integers(cfg.scheduler.num_train_timesteps, rows).to(device)
        latents, ref_latents, context = self.encode(batch, drop, draws)
        noise = draws.normal(tuple(latents.shape)).to(latents)
        if cfg.noise_offset:
            offset_shape = (*latents.shape[:2], *[1] * (latents.ndim - 2))  # (B, C, 1, 1[, 1])
            noise = noise + cfg.noise_offset * draws.normal(offset_shape).to(latents)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        prediction = self.networks(
            noisy, timesteps, context, batch["pose"].to(device), batch["ref_pose"].to(device),
            None if drop else ref_latents, cfg.reference_timestep,
        )  # fmt: skip
        per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none")
        dims = tuple(range(1, per_sample.ndim))
        if cfg.mouth_weight > 0:
            weights = self.mouth_weights(batch, latents.shape).to(device).expand_as(per_sample)
            per_sample = (per_sample * weights).sum(dim=dims) / weights.sum(dim=dims)
        else:
            per_sample = per_sample.mean(dim=dims)
        return (per_sample * min_snr_weights(self.noise_scheduler, timesteps, cfg.snr_gamma)).mean()

    def mouth_weights(self, batch: dict[str, torch.Tensor], latent_shape: torch.Size) -> torch.Tensor:
        """Loss weights ``(B, 1, h, w)`` or ``(B, 1, F, h, w)`` from the batch's target ``lmks``."""
        if "lmks" not in batch:
            raise ValueError("mouth_weight > 0 needs the targets' landmarks: the batch has no 'lmks'")
        lmks, side = batch["lmks"].numpy(), latent_shape[-1]
        if latent_shape[-2] != side:
            raise ValueError(f"mouth_weight needs square latents, got {tuple(latent_shape[-2:])}")
        flat = lmks.reshape(-1, *lmks.shape[-2:])  # (B·F, L, 2)
        weights = mouth_weight_map(flat, side, self.config.mouth_weight)  # (B·F, 1, h, w)
        if len(latent_shape) == 5:
            return rearrange(weights, "(b f) 1 h w -> b 1 f h w", b=latent_shape[0])
        return weights

    def loader(self, start_step: int | None = None) -> DataLoader:
        """Micro-batches of this process from ``start_step`` (default: the current step) to ``max_steps``.

        A ``DataLoader`` over the dataset's positions (:class:`~.sampling.PositionSampler`) with
        ``config.num_workers`` reader processes; each batch is one micro-batch, in step order.
        """
        cfg = self.config
        start = self.step if start_step is None else start_step
        sampler = PositionSampler(
            start, cfg.max_steps, cfg.batch_size, cfg.gradient_accumulation_steps, self.shard
        )
        return DataLoader(
            self.dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
            persistent_workers=False, prefetch_factor=2 if cfg.num_workers else None,
        )  # fmt: skip

    def dry_run(self) -> dict:
        """Everything up to the first optimizer step: read this process's first micro-batch and describe
        the run (steps, trained parameters, batch shapes); trains nothing."""
        batch = next(iter(self.loader()))
        trained = sum(p.numel() for p in self.unwrapped.parameters() if p.requires_grad)
        return {
            "trainer": type(self).__name__, "steps": f"{self.step} → {self.config.max_steps}",
            "processes": self.shard.world, "batch per process": self.config.batch_size,
            "trained parameters": trained, "device": str(self.accelerator.device),
            "mixed precision": self.accelerator.mixed_precision,
            **{f"batch {key}": tuple(value.shape) for key, value in batch.items()},
        }  # fmt: skip

    def _optimizer_step(self, micro_batches: Iterator[dict[str, torch.Tensor]]) -> float:
        """Gradient accumulation over ``gradient_accumulation_steps`` micro-batches, clip, step.

        Gradients are averaged across processes once per optimizer step (``no_sync`` before the last
        micro-batch); the returned loss is this process's.
        """
        cfg = self.config
        self.train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.gradient_accumulation_steps):
            last = micro == cfg.gradient_accumulation_steps - 1
            sync = nullcontext() if last else self.accelerator.no_sync(self.networks)
            with sync:  # the backward pass syncs gradients across processes, so it runs inside too
                with self.accelerator.autocast():  # the forward pass only, as torch advises
                    batch = next(micro_batches)
                    loss = self.loss(batch, self.draws(self.step, micro)) / cfg.gradient_accumulation_steps
                self.accelerator.backward(loss)
                self.unwrapped.clear_reference_bank()  # kept through backward for checkpointed blocks
            total += float(loss.detach())
        if cfg.max_grad_norm > 0:
            self.accelerator.unscale_gradients()
            clip_grad_norm_float64(self.networks.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.step += 1
        return total

    def _log(self, loss: float, seconds: float) -> None:
        """The loss averaged over processes → ``log.csv`` and the trackers (main process only)."""
        if self.shard.world > 1:
            loss = float(self.accelerator.reduce(torch.tensor(loss, device=self.accelerator.device), "mean"))
        if self.accelerator.is_main_process:
            learning_rate = self.lr_scheduler.get_last_lr()[0]
            append_loss_row(self.log_path, self.step, loss, learning_rate, seconds)
            if self.config.report_to:
                self.accelerator.log({"loss": loss, "lr": learning_rate, "seconds": seconds}, step=self.step)

    def save(self) -> Path | None:
        """Atomic checkpoint: networks, optimizer, LR scheduler, step (data order and draws follow).

        Written by the main process only (the weights are the same on every process); the others wait for
        it. Under FSDP2 every process first helps gather the whole weights and optimizer state
        (:mod:`.sharding`), so the file is the same as a single process would write. Returns the path on the
        main process, ``None`` on the others.
        """
        path = None
        main = self.accelerator.is_main_process
        if main or is_sharded(self.unwrapped):
            model_state = full_model_state(self.unwrapped)
            optimizer_state = full_optimizer_state(self.unwrapped, self.optimizer)
        if main:
            path = save_training_state(
                self.output_dir, self.step, model_state, optimizer_state, self.lr_scheduler,
                extra={"config": asdict(self.config), FIXED_KEY: self.fixed_signature,
                       PROCESSES_KEY: self.shard.world},
                keep_last=self.config.keep_checkpoints,
            )  # fmt: skip
        self.accelerator.wait_for_everyone()
        return path

    def resume(self) -> bool:
        """Restore the newest checkpoint in ``output_dir`` (log rows after it are dropped); True if found.

        Raises:
            ValueError: the checkpoint was trained against other fixed models (:meth:`fixed_state`), e.g.
                a VAE since retrained: continuing it would mix two trainings. Nothing is restored.
        """
        path = latest_checkpoint(self.output_dir)
        if path is None:
            return False
        state = load_training_state(
            path, self.unwrapped, self.optimizer, self.lr_scheduler, check=self._check_fixed_models
        )
        self.step = state.step
        saved_world = int(state.extra.get(PROCESSES_KEY, 1))
        if saved_world != self.shard.world:
            warnings.warn(
                f"{path} was written by a run of {saved_world} process(es), resumed now with "
                f"{self.shard.world}: training continues, but the samples from here on differ from "
                "those of an uninterrupted run",
                stacklevel=2,
            )
        if self.accelerator.is_main_process:
            truncate_loss_log(self.log_path, self.step)
        self.accelerator.wait_for_everyone()
        return True

    def _check_fixed_models(self, path: Path, extra: dict) -> None:
        recorded = extra.get(FIXED_KEY)  # absent in checkpoints written before it was recorded
        if recorded is not None and not same_signature(recorded, self.fixed_signature):
            raise ValueError(
                f"{path} was trained against other fixed models ({', '.join(self.fixed_parts)}) than the "
                f"ones given now, so it cannot be continued: delete {self.output_dir} to train afresh, "
                "or pass the models it was trained with"
            )

    def train(self, stop_after: int | None = None) -> list[float]:
        """Train to ``max_steps`` (or ``stop_after`` more steps); returns this call's losses (this process's).

        Every random draw follows the step (:mod:`.sampling`), so a fresh and a resumed run need no seeding
        of the global RNGs. Checkpoints every ``checkpoint_every`` steps and at the end (main process).
        """
        cfg = self.config
        end = cfg.max_steps if stop_after is None else min(cfg.max_steps, self.step + stop_after)
        losses: list[float] = []
        if self.step >= end:
            return losses
        if cfg.report_to:
            self.accelerator.init_trackers(self.output_dir.name or "lmk2video", config=_flat_config(cfg))
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=type(self).__name__, unit="step",
                   disable=not (cfg.progress and self.accelerator.is_main_process))  # fmt: skip
        with torch_threads(cfg.num_threads):
            micro_batches = iter(self.loader())
            while self.step < end:
                start = time.perf_counter()
                losses.append(self._optimizer_step(micro_batches))
                self._log(losses[-1], time.perf_counter() - start)
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                    self.save()
        bar.close()
        if cfg.report_to:
            self.accelerator.end_training()
        return losses


def _flat_config(config) -> dict:
    """The recipe as flat scalars for a tracker's hyper-parameter table (tuples and sub-configs as text)."""
    flat = {}
    for key, value in asdict(config).items():
        flat[key] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat
