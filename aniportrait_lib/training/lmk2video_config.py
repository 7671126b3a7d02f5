"""Typed recipes of Lmk2Video training (AniPortrait §3.2, spec §4): stage 1, stage 2, the small VAE.

Every item of the official recipe is a field here, with the official value as the default and a comment
naming its source (``train_stage_1.py`` / ``configs/train/stage1.yaml`` of the official repository, as
summarised in the spec §4). The profiles' choices (the small CPU variants) are made in
:mod:`aniportrait_lib.profiles` with :mod:`aniportrait_lib.studies.configs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aniportrait_lib.models.scheduler import DDIMConfig, training_scheduler_config

__all__ = ["Stage1TrainConfig", "Stage2TrainConfig", "VaePretrainConfig"]


@dataclass
class Stage1TrainConfig:
    """Stage 1: denoiser 2-D part + reference UNet + PoseGuider on (target, reference) frame pairs.

    Defaults are the official values (spec §4, ``configs/train/stage1.yaml``, ``train_stage_1.py``).
    """

    image_size: int = 512  # stage1.yaml data.train_width/height
    crop_scale: float | None = 1.9  # kit: corpus frames cut to the face as official data are (None: whole)
    batch_size: int = 2  # train_bs per GPU
    gradient_accumulation_steps: int = 1  # stage1.yaml
    max_steps: int = 300_000  # max_train_steps (official checkpoint: step 300000)
    learning_rate: float = 1e-5  # solver.learning_rate, constant ...
    lr_warmup_steps: int = 1  # ... after lr_warmup_steps
    lr_decay_steps: int = (
        0  # kit: decay linearly to 0 over the last N steps (official: 0, constant to the end)
    )
    adam_betas: tuple[float, float] = (0.9, 0.999)  # solver.adam_beta1/2
    adam_weight_decay: float = 1e-2  # solver.adam_weight_decay
    adam_epsilon: float = 1e-8  # solver.adam_epsilon
    use_8bit_adam: bool = True  # bitsandbytes AdamW8bit (falls back to torch AdamW where unavailable)
    max_grad_norm: float = 1.0  # solver.max_grad_norm
    mixed_precision: str = "fp16"  # accelerate ("no" on CPU)
    gradient_checkpointing: bool = False  # stage 1: off (stage 2: on)
    seed: int = 12580  # official seed
    noise_offset: float = 0.05  # noise += 0.05·randn(B, C, 1, 1)
    snr_gamma: float = 5.0  # min-SNR-γ weighting, w = min(SNR+1, γ)/(SNR+1) for v-prediction
    uncond_ratio: float = 0.1  # whole batch: zero CLIP pixels and no reference attention
    mouth_weight: float = 0.0  # kit: MSE weighted up around the target's lips (latent-size mouth_weight_map)
    reference_timestep: int = 0  # the reference UNet sees its latents at t = 0
    reference_frozen: tuple[str, ...] = ("up_blocks.3",)  # its output head is never used
    scheduler: DDIMConfig = field(default_factory=training_scheduler_config)  # scaled_linear, v-pred, 0-SNR
    checkpoint_every: int = 2000  # kit (official: checkpointing_steps 2000)
    keep_checkpoints: int = 2  # kit: newest training checkpoints kept
    cpu: bool = False  # accelerate: force the CPU
    num_threads: int | None = None  # torch intra-op threads while training (None: leave as is)
    num_workers: int = 0  # kit: DataLoader reader processes (0: read in the training process)
    report_to: str | None = None  # kit: accelerate tracker ("tensorboard", ...; None: only log.csv)
    progress: bool = False  # kit: tqdm bar on the main process (the training command turns it on)


@dataclass
class Stage2TrainConfig(Stage1TrainConfig):
    """Stage 2: only the motion modules, on 16-frame clips, from stage-1 weights (spec §4, stage2.yaml).

    Fields not repeated here keep the stage-1 recipe (lr, Adam, min-SNR, noise offset, uncond ratio, ...).
    """

    batch_size: int = 1  # train_bs per GPU
    max_steps: int = 40_000  # official motion_module.pth: step 40000
    gradient_checkpointing: bool = True  # stage2.yaml
    num_frames: int = 16  # n_sample_frames
    sample_strides: tuple[int, ...] = (1, 4)  # sample_stride_aug: 50 % stride 1, 50 % stride 4


@dataclass
class VaePretrainConfig:
    """Short pre-training of the small VAE on corpus frames (kit; the gpu profile uses sd-vae-ft-mse)."""

    steps: int = 0  # 0 = do not pre-train (real weights)
    batch_size: int = 8
    learning_rate: float = 3e-3  # Adam, cosine decay; tiny conv nets from scratch tolerate a large rate
    kl_weight: float = 1e-6  # SD's VAE used 1e-6 with a perceptual/GAN loss; here plain L1 + KL
    mouth_weight: float = 0.0  # kit: L1 weighted up around the lips (lmk2video_data.mouth_weight_map)
    seed: int = 0
    num_threads: int | None = None  # torch intra-op threads (see Stage1TrainConfig.num_threads)
