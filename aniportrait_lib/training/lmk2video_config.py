"""Typed configs of Lmk2Video training (AniPortrait §3.2, spec §4), one bundle per profile.

Every item of the official recipe is a field here, with the official value as the ``gpu`` profile's
value and a comment naming its source (``train_stage_1.py`` / ``configs/train/stage1.yaml`` of the
official repository, as summarised in the spec §4). The ``quick`` and ``cpu`` profiles keep the recipe
(v-prediction, zero-SNR, min-SNR weighting, noise offset, unconditional drop, reference pass at t=0)
but shrink the networks and the budget so they train on two CPU cores:

* **frames** 64² (quick) / 96² (cpu) instead of 512²; the small VAE has 8 latent channels (SD: 4);
* **UNets** ``(32, 64, 128, 128)`` with one layer per block and 2 heads - the multi-scale guider adds
  maps of widths ``(C, C, 2C, 4C, 4C)``, so the UNet widths must be ``(C, 2C, 4C, 4C)``;
* **VAE**: a small ``AutoencoderKL`` pre-trained for a minute on the corpus frames
  (:mod:`.lmk2video_vae`) - a random VAE would make the latents meaningless;
* **CLIP image encoder**: a tiny randomly initialised ViT, frozen. Its embedding of the (single)
  portrait is one almost constant vector, i.e. a learned-free constant context; this is honest for a
  one-identity corpus and keeps the code path (zeroed CLIP pixels for the unconditional drop) intact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from aniportrait_lib.models.lmk2video import (
    SMALL_VAE_CONFIG,
    TINY_CLIP_CONFIG,
    Lmk2VideoModelConfig,
    small_unet_config,
)
from aniportrait_lib.models.scheduler import DDIMConfig, training_scheduler_config

__all__ = [
    "LMK2VIDEO_PROFILES",
    "Lmk2VideoEvalConfig",
    "Lmk2VideoProfile",
    "Stage1TrainConfig",
    "Stage2TrainConfig",
    "VaePretrainConfig",
    "lmk2video_profile",
]


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


@dataclass
class Lmk2VideoEvalConfig:
    """Held-out evaluation: frames per clip, sampler settings (official sampling in comments)."""

    frames_per_clip: int = 8  # evenly spaced frames per held-out clip (after the reference frame 0)
    max_clips: int = 8  # held-out clips evaluated
    num_inference_steps: int = 25  # official CLI default
    guidance_scale: float = 3.5  # official CLI default
    scheduler: DDIMConfig = field(default_factory=DDIMConfig)  # official inference: linear betas
    upscale_to: int = 256  # frames are upscaled to this side before MediaPipe
    seed: int = 42  # official sampling seed
    num_threads: int | None = None  # torch intra-op threads while sampling


@dataclass
class Lmk2VideoProfile:
    """Everything one profile needs: model sizes, VAE pre-training, stage 1, evaluation."""

    name: str
    model: Lmk2VideoModelConfig
    vae: VaePretrainConfig
    stage1: Stage1TrainConfig
    evaluation: Lmk2VideoEvalConfig
    final_steps: int = 0
    """Stage-1 steps of the model the later notebooks use: the official guider (b), trained on from the
    study's run (0: the study's budget). The study compares guiders at ``stage1.max_steps`` each."""
    final_lr_decay_steps: int = 0
    """``lr_decay_steps`` of that longer run (0: constant learning rate, as the official recipe)."""


def _small(image_size: int, steps: int, vae_steps: int, eval_frames: int, eval_steps: int) -> tuple:
    model = Lmk2VideoModelConfig(
        unet=small_unet_config(),
        vae={**SMALL_VAE_CONFIG, "sample_size": image_size},
        clip=dict(TINY_CLIP_CONFIG),
        guider_attention_heads=2,
        guider_attention_head_dim=16,
        single_guider_channels=(16, 32, 64, 128),
    )
    stage1 = Stage1TrainConfig(
        image_size=image_size,
        batch_size=4,  # kit: more pairs per step help small nets more than GPU-sized batches of 2
        max_steps=steps,
        learning_rate=3e-4,  # kit: small nets from scratch (official 1e-5 fine-tunes SD1.5)
        lr_warmup_steps=20,
        use_8bit_adam=False,  # bitsandbytes is CUDA-only
        mixed_precision="no",
        checkpoint_every=max(steps // 2, 1),
        cpu=True,
        # kit, measured on a shared 2-core machine: these small ops are dominated by thread
        # synchronisation; one thread gave 0.13 s per step, two threads 0.25 - 3.9 s.
        num_threads=1,
    )
    # kit: lips weighted 1 + 4 (cpu corpus, 500 steps: reconstructions' mouth-opening correlation 0.43 → 0.75)
    vae = VaePretrainConfig(steps=vae_steps, batch_size=8, mouth_weight=4.0, num_threads=1)
    evaluation = Lmk2VideoEvalConfig(
        frames_per_clip=eval_frames,
        num_inference_steps=eval_steps,
        # kit: no classifier-free guidance for the small model (3.5 over-saturates it; measured on the cpu
        # corpus after 1000 steps: PSNR 25.3 dB at 1.0 vs 25.1 dB at 1.5) - and one UNet pass per step
        guidance_scale=1.0,
        scheduler=training_scheduler_config(),  # kit: sample with the betas it was trained with
        num_threads=1,
    )
    return model, vae, stage1, evaluation


LMK2VIDEO_PROFILES: dict[str, Lmk2VideoProfile] = {
    "quick": Lmk2VideoProfile(
        "quick",
        *_small(64, steps=60, vae_steps=80, eval_frames=4, eval_steps=10),
        final_steps=100,
        final_lr_decay_steps=40,
    ),
    # cpu, measured on held-out face crops (guider b; reference unchanged: 25.6 dB, 1.22 px), constant lr:
    # 1000 steps 25.3 dB / 1.09 px, 1500 steps 26.2 dB / 1.27 px, 2000 steps 26.7 dB / 1.13 px - and, with
    # another random stream, 25.6 dB / 1.11 px at 2000 steps: batches of 4 leave the weights noisy, so the
    # kit's model decays the learning rate over its last 1000 steps
    "cpu": Lmk2VideoProfile(
        "cpu",
        # VAE 1500 steps, measured on 4 held-out clips' reconstructions (500 → 1500 steps): mouth-opening
        # correlation 0.75 → 0.92 (real frames: 0.91), landmarks 0.82 → 0.44 px, PSNR 28.3 → 34.8 dB;
        # lip weight 12 instead of 4 at 500 steps: 0.71
        *_small(96, steps=500, vae_steps=1500, eval_frames=6, eval_steps=20),
        final_steps=2500,
        final_lr_decay_steps=1000,
    ),  # fmt: skip
    "gpu": Lmk2VideoProfile(
        "gpu", Lmk2VideoModelConfig(), VaePretrainConfig(), Stage1TrainConfig(), Lmk2VideoEvalConfig()
    ),
}


def lmk2video_profile(name: str, **stage1_overrides: Any) -> Lmk2VideoProfile:
    """A deep copy of a profile's configs; ``stage1_overrides`` replace :class:`Stage1TrainConfig` fields."""
    if name not in LMK2VIDEO_PROFILES:
        raise ValueError(f"unknown Lmk2Video profile {name!r}: choose one of {', '.join(LMK2VIDEO_PROFILES)}")
    profile = copy.deepcopy(LMK2VIDEO_PROFILES[name])
    profile.stage1 = replace(profile.stage1, **stage1_overrides)
    return profile
