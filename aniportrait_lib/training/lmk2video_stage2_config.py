"""Typed configs of Lmk2Video stage 2 (motion modules, spec §4) and of its temporal evaluation, per profile.

``gpu`` is the official recipe as :class:`~.lmk2video_config.Stage2TrainConfig` holds it (16-frame clips,
strides 1 / 4, batch 1, lr 1e-5, 40,000 steps, gradient checkpointing, fp16) with the official context
windows at sampling time (16 frames, overlap 4, wrap-around). ``quick`` and ``cpu`` keep every item of the
recipe that is not a size or a budget, and shrink those so that notebook 04 runs in about two and ten
minutes on two CPU cores:

* **clip length** 8 frames for training and evaluation windows of 8 (the motion modules are attention
  over frames: any length up to ``max_seq_length`` = 32 works);
* **stride** 1 only (official: 1 or 4): consecutive frames are what evaluation and generation produce;
* **learning rate** 1e-3 instead of 1e-5: the official run fine-tunes AnimateDiff's pre-trained motion
  modules, here they start from zero output and must learn from scratch in a few hundred steps;
* **steps** 40 (quick: a smoke test, too few to change anything measurably) and 800 (cpu);
* **frames** at the stage-1 run's size (notebook 03: 64² quick, 96² cpu), read from the run itself.

Measured held-out flicker reduction (cpu profile, 3 clips × 24 frames). With notebook 03's model (face
crops, 2000 steps, no guidance), 800 steps: −16 % (3.53 → 2.95 grey levels), ~4 min of training on a busy
2-core machine. The choices above come from an earlier whole-frame stage-1 model (guidance 1.5), where 500
steps gave −9.5 % with 8-frame clips at stride 1, −8.1 % with strides 1 and 4, −8.6 % with 16-frame clips
(twice the compute per step), the same with lr 3e-3; and 200 / 500 / 1000 steps gave −5.5 / −9.5 / −11 %.

Generation with these motion modules uses the same 8-frame windows (the stage-2 export's ``config.json``
carries them to :func:`~aniportrait_lib.pipelines.selection.resolve_weights`).

**Flicker against lip sync (cpu).** Temporal layers could lower flicker by smoothing the one fast, small
motion of a talking head, the mouth, so notebook 04 measures mouth following beside flicker, and notebook 05
the speech-driven mouth. Measured on the cpu corpus (8 held-out clips, Audio2Mesh-driven, scored on the
decoded frames): mouth-opening correlation 0.638 with stage 1 alone and 0.644 with modules trained at lr 2e-4
(600-step Audio2Mesh); 0.671 at lr 2e-4 and 0.673 at lr 1e-3 (1200-step Audio2Mesh). The modules do not damp
the mouth, and lr 1e-3 removes more flicker (−6.6 % vs −5.0 %), so it stays. (The low 0.54 notebook 05
once measured came from the H.264 encode at 96², not from the modules: see
:meth:`~aniportrait_lib.pipelines.generate.GenerateConfig.video_crf`.) A lip-weighted loss
(``mouth_weight=4``) did not help either (0.528 → 0.524 through that encode), so it stays off.

The sampler settings (steps, guidance, scheduler) are notebook 03's for the same profile, so stage-1-only
and stage-2 videos are generated exactly as the held-out frames of the guider study were.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from aniportrait_lib.models.unets import MotionModuleConfig

from .lmk2video_config import Lmk2VideoEvalConfig, Stage2TrainConfig, lmk2video_profile

__all__ = [
    "MOTION_STUDY_PROFILES",
    "MotionEvalConfig",
    "MotionStudyProfile",
    "motion_study_profile",
]


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
    """What notebook 04 needs for one profile: the stage-2 recipe, the motion modules, the evaluation."""

    name: str
    stage2: Stage2TrainConfig
    motion: MotionModuleConfig
    evaluation: MotionEvalConfig


def _small(name: str, steps: int, clips: int, eval_frames: int, num_frames: int = 8) -> MotionStudyProfile:
    stage1 = lmk2video_profile(name).stage1
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
        num_threads=1,  # kit: see Stage1TrainConfig.num_threads (one thread is faster on 2 shared cores)
    )
    evaluation = MotionEvalConfig(
        max_clips=clips,
        num_frames=eval_frames,
        context_frames=num_frames,  # = the clip length the motion modules were trained on
        context_overlap=num_frames // 4,  # official 4 of 16
        wrap_around=False,  # kit: held-out clips do not loop; a closed loop would mix their end and start
        sampling=copy.deepcopy(lmk2video_profile(name).evaluation),
    )
    return MotionStudyProfile(name, stage2, MotionModuleConfig(), evaluation)


MOTION_STUDY_PROFILES: dict[str, MotionStudyProfile] = {
    "quick": _small("quick", steps=40, clips=1, eval_frames=12),
    "cpu": _small("cpu", steps=800, clips=3, eval_frames=24),
    "gpu": MotionStudyProfile(
        "gpu",
        Stage2TrainConfig(),
        MotionModuleConfig(),
        MotionEvalConfig(sampling=copy.deepcopy(lmk2video_profile("gpu").evaluation)),
    ),
}


def motion_study_profile(name: str, **stage2_overrides: Any) -> MotionStudyProfile:
    """A deep copy of a profile's configs; ``stage2_overrides`` replace :class:`Stage2TrainConfig` fields."""
    if name not in MOTION_STUDY_PROFILES:
        raise ValueError(
            f"unknown stage-2 profile {name!r}: choose one of {', '.join(MOTION_STUDY_PROFILES)}"
        )
    profile = copy.deepcopy(MOTION_STUDY_PROFILES[name])
    profile.stage2 = replace(profile.stage2, **stage2_overrides)
    return profile
