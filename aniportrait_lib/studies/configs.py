"""Typed configs of the Lmk2Video studies (notebooks 03 and 04) and their small-profile builders.

A study config bundles a recipe (:mod:`aniportrait_lib.training.lmk2video_config`) with the network
sizes (:class:`~aniportrait_lib.models.lmk2video.Lmk2VideoModelConfig`) and how the notebook evaluates
the result on held-out clips. Which numbers each profile uses is :mod:`aniportrait_lib.profiles`' choice;
the builders here shrink the official recipe for the CPU profiles:

**Stage 1 (notebook 03).** Frames 64² (quick) / 96² (cpu) instead of 512²; UNets ``(32, 64, 128, 128)``
with one layer per block and 2 heads; the small VAE (8 latent channels) pre-trained on corpus frames
(:mod:`aniportrait_lib.training.lmk2video_vae`) - a random VAE would make the latents meaningless; a tiny,
random, frozen CLIP image encoder, whose embedding of the one portrait is an almost constant vector (honest
for a one-identity corpus, and the unconditional drop's code path stays intact).

**Stage 2 (notebook 04).** ``gpu`` is the official recipe (16-frame clips, strides 1 / 4, batch 1, lr 1e-5,
40,000 steps, gradient checkpointing, fp16) with the official context windows at sampling time (16 frames,
overlap 4, wrap-around). ``quick`` and ``cpu`` keep every item of the recipe that is not a size or a budget:

* **clip length** 8 frames for training and evaluation windows of 8 (the motion modules are attention
  over frames: any length up to ``max_seq_length`` = 32 works);
* **stride** 1 only (official: 1 or 4): consecutive frames are what evaluation and generation produce;
* **learning rate** 1e-3 instead of 1e-5: the official run fine-tunes AnimateDiff's pre-trained motion
  modules, here they start from zero output and must learn from scratch in a few hundred steps;
* **frames** at the stage-1 run's size, read from the run itself.

Measured held-out flicker reduction (cpu profile, 3 clips × 24 frames). With notebook 03's model (face
crops, 2000 steps, no guidance), 800 steps: −16 % (3.53 → 2.95 grey levels), ~4 min of training on a busy
2-core machine. The choices above come from an earlier whole-frame stage-1 model (guidance 1.5), where 500
steps gave −9.5 % with 8-frame clips at stride 1, −8.1 % with strides 1 and 4, −8.6 % with 16-frame clips
(twice the compute per step), the same with lr 3e-3; and 200 / 500 / 1000 steps gave −5.5 / −9.5 / −11 %.

Generation with these motion modules uses the same 8-frame windows (the stage-2 export's index carries them
to :func:`~aniportrait_lib.pipelines.selection.resolve_weights`).

**Flicker against lip sync (cpu).** Temporal layers could lower flicker by smoothing the one fast, small
motion of a talking head, the mouth, so notebook 04 measures mouth following beside flicker, and notebook 05
the speech-driven mouth. Measured on the cpu corpus (8 held-out clips, Audio2Mesh-driven, scored on the
decoded frames): mouth-opening correlation 0.638 with stage 1 alone and 0.644 with modules trained at lr 2e-4
(600-step Audio2Mesh); 0.671 at lr 2e-4 and 0.673 at lr 1e-3 (1200-step Audio2Mesh). The modules do not damp
the mouth, and lr 1e-3 removes more flicker (−6.6 % vs −5.0 %), so it stays. (The low 0.54 notebook 05
once measured came from the H.264 encode at 96², not from the modules: see
:meth:`~aniportrait_lib.config.GenerateConfig.video_crf`.) A lip-weighted loss (``mouth_weight=4``) did not
help either (0.528 → 0.524 through that encode), so it stays off.

The sampler settings (steps, guidance, scheduler) of stage 2's evaluation are notebook 03's for the same
profile, so stage-1-only and stage-2 videos are generated exactly as the held-out frames of the guider study
were.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from aniportrait_lib.models.lmk2video import (
    SMALL_VAE_CONFIG,
    TINY_CLIP_CONFIG,
    Lmk2VideoModelConfig,
    small_unet_config,
)
from aniportrait_lib.models.scheduler import DDIMConfig, training_scheduler_config
from aniportrait_lib.models.unets import MotionModuleConfig
from aniportrait_lib.training.lmk2video_config import Stage1TrainConfig, Stage2TrainConfig, VaePretrainConfig

__all__ = [
    "Lmk2VideoEvalConfig",
    "Lmk2VideoProfile",
    "MotionEvalConfig",
    "MotionStudyProfile",
    "small_lmk2video_profile",
    "small_motion_study_profile",
]


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
    """Notebook 03's configs for one profile: model sizes, VAE pre-training, stage 1, evaluation."""

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
    study_processes: int = 1
    """Processes training the study's runs at once. 2: (b)'s run and its longer run here, the other guiders'
    runs in a second process, each with ``stage1.num_threads`` threads (kit, cpu profile: a small stage-1
    step keeps about one core busy whatever the thread count - measured 106 % CPU with two threads - so two
    one-thread runs use both cores; the weights are those of the same runs one after the other)."""

    def with_budget(self, max_steps: int | None) -> Lmk2VideoProfile:
        """This profile with ``max_steps`` stage-1 steps per guider (``None``: unchanged); the longer run
        of the kit's model and its decay are scaled by the same factor."""
        if max_steps is None:
            return self
        ratio = max_steps / max(self.stage1.max_steps, 1)
        stage1 = replace(self.stage1, max_steps=max_steps, checkpoint_every=min(self.stage1.checkpoint_every,
                                                                                 max_steps))  # fmt: skip
        return replace(self, stage1=stage1, final_steps=round(self.final_steps * ratio),
                       final_lr_decay_steps=round(self.final_lr_decay_steps * ratio))  # fmt: skip


def small_lmk2video_profile(
    name: str,
    image_size: int,
    steps: int,
    vae_steps: int,
    eval_frames: int,
    eval_steps: int,
    final_steps: int,
    final_lr_decay_steps: int,
    num_threads: int | None = 1,
    study_processes: int = 1,
) -> Lmk2VideoProfile:
    """Notebook 03 at CPU size: ``image_size``² frames, ``steps`` per guider, ``vae_steps`` of VAE
    pre-training, ``eval_frames`` per held-out clip sampled in ``eval_steps`` DDIM steps, and the kit's
    model trained on to ``final_steps`` (learning rate decayed over the last ``final_lr_decay_steps``).
    ``num_threads``: torch threads for pre-training, training and sampling (None: torch's default, all
    cores - for a machine the suite has to itself; 1 for machines shared with other jobs, e.g. CI).
    ``study_processes`` > 1 trains the study's runs that many at a time, stage 1 with one thread each."""
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
        # synchronisation; one thread gave 0.13 s per step, two threads 0.25 - 3.9 s. On the same machine
        # with nothing else running two threads are faster (0.22 → 0.19 s per step; VAE 0.30 → 0.18 s).
        num_threads=1 if study_processes > 1 else num_threads,
    )
    # kit: lips weighted 1 + 4 (cpu corpus, 500 steps: reconstructions' mouth-opening correlation 0.43 → 0.75)
    vae = VaePretrainConfig(steps=vae_steps, batch_size=8, mouth_weight=4.0, num_threads=num_threads)
    evaluation = Lmk2VideoEvalConfig(
        frames_per_clip=eval_frames,
        num_inference_steps=eval_steps,
        # kit: no classifier-free guidance for the small model (3.5 over-saturates it; measured on the cpu
        # corpus after 1000 steps: PSNR 25.3 dB at 1.0 vs 25.1 dB at 1.5) - and one UNet pass per step
        guidance_scale=1.0,
        scheduler=training_scheduler_config(),  # kit: sample with the betas it was trained with
        num_threads=num_threads,
    )
    return Lmk2VideoProfile(
        name, model, vae, stage1, evaluation, final_steps, final_lr_decay_steps, study_processes
    )


@dataclass
class MotionEvalConfig:
    """Held-out temporal evaluation: which frames are generated and how (official sampling in comments)."""

    max_clips: int = 6  # held-out clips evaluated
    num_frames: int = 32  # consecutive frames per clip, starting after the reference frame 0
    context_frames: int = 16  # official context window (= training clip length)
    context_overlap: int = 4  # official overlap
    wrap_around: bool = True  # official closed-loop windows
    sampling: Lmk2VideoEvalConfig = field(default_factory=Lmk2VideoEvalConfig)  # steps, cfg, scheduler, seed


@dataclass
class MotionStudyProfile:
    """Notebook 04's configs for one profile: the stage-2 recipe, the motion modules, the evaluation."""

    name: str
    stage2: Stage2TrainConfig
    motion: MotionModuleConfig
    evaluation: MotionEvalConfig

    def with_budget(self, max_steps: int | None) -> MotionStudyProfile:
        """This profile with ``max_steps`` stage-2 steps (``None``: unchanged)."""
        if max_steps is None:
            return self
        every = min(self.stage2.checkpoint_every, max_steps)
        return replace(self, stage2=replace(self.stage2, max_steps=max_steps, checkpoint_every=every))


def small_motion_study_profile(
    lmk2video: Lmk2VideoProfile, steps: int, clips: int, eval_frames: int, num_frames: int = 8
) -> MotionStudyProfile:
    """Notebook 04 at CPU size, on top of notebook 03's ``lmk2video`` configs (its recipe and sampling):
    ``steps`` of stage 2 on ``num_frames``-frame clips, ``clips`` held-out clips of ``eval_frames``."""
    stage1 = copy.deepcopy(lmk2video.stage1)
    recipe = {k: v for k, v in vars(stage1).items() if k in Stage2TrainConfig.__dataclass_fields__}
    stage2 = replace(
        Stage2TrainConfig(**copy.deepcopy(recipe)),
        batch_size=1,  # official train_bs
        max_steps=steps,
        learning_rate=1e-3,  # kit: motion modules from zero in a few hundred steps (official 1e-5 fine-tunes)
        lr_warmup_steps=10,
        gradient_checkpointing=False,  # kit: small activations; recomputation would only cost time
        num_frames=num_frames,  # official 16
        sample_strides=(1,),  # official (1, 4); see the module docstring
        checkpoint_every=max(steps // 2, 1),
        num_threads=lmk2video.evaluation.num_threads,  # the profile's (see small_lmk2video_profile)
    )
    evaluation = MotionEvalConfig(
        max_clips=clips,
        num_frames=eval_frames,
        context_frames=num_frames,  # = the clip length the motion modules were trained on
        context_overlap=num_frames // 4,  # official 4 of 16
        wrap_around=False,  # kit: held-out clips do not loop; a closed loop would mix their end and start
        sampling=copy.deepcopy(lmk2video.evaluation),
    )
    return MotionStudyProfile(lmk2video.name, stage2, MotionModuleConfig(), evaluation)
