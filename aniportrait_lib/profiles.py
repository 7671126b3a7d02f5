"""Run profiles, defined once: a profile name → the run's budget and every stage's typed config.

A notebook's only knob is its ``profile`` parameter (``nb.configs`` is this module's answer for it); the
command line's ``--profile`` means the same. Everything that differs between a CI smoke run, a laptop and
a paper-scale GPU run is chosen here, with the measurements behind each choice beside it; the stage
modules define the typed configs (their fields, documented defaults and official values) and know
nothing of profile names.

======================  ===========================  ==============================================
field                   type                         used by
======================  ===========================  ==============================================
``run``                 :class:`~.config.Profile`    every notebook: device, dtype, time budget
``corpus``              ``CorpusConfig``             the mini corpus (notebook 01, and all later)
``audio2lmk``           ``Audio2LmkProfile``         Audio2Mesh / Audio2Pose sizes and training (02)
``lmk2video``           ``Lmk2VideoProfile``         network sizes, VAE, stage 1, held-out sampling (03)
``motion``              ``MotionStudyProfile``       stage 2, motion modules, temporal evaluation (04)
``generation``          :class:`~.config.GenerateConfig`  rendering defaults where the weights say nothing
======================  ===========================  ==============================================

The ``quick`` and ``cpu`` profiles keep every item of the official recipes that is not a size or a budget
(v-prediction, zero-SNR, min-SNR weighting, noise offset, unconditional drop, reference pass at t = 0) and
shrink sizes and budgets so they train on two CPU cores; ``gpu`` is the official recipe at full size with
budgets one GPU finishes in about an hour per notebook (no notebook starts a paper-length run: that is
``python -m aniportrait_lib.train`` with the ``official`` recipe).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aniportrait_lib.audio.audio2mesh import Audio2MeshConfig
from aniportrait_lib.audio.audio2pose import Audio2PoseConfig
from aniportrait_lib.audio.encoder import wav2vec2_base_960h_config
from aniportrait_lib.config import GenerateConfig, Profile
from aniportrait_lib.data.audio_dataset import AudioDatasetConfig
from aniportrait_lib.data.mini_corpus import CorpusConfig
from aniportrait_lib.models.lmk2video import Lmk2VideoModelConfig
from aniportrait_lib.models.unets import MotionModuleConfig
from aniportrait_lib.studies.configs import (
    Lmk2VideoEvalConfig,
    Lmk2VideoProfile,
    MotionEvalConfig,
    MotionStudyProfile,
    small_lmk2video_profile,
    small_motion_study_profile,
)
from aniportrait_lib.training.audio2lmk import Audio2LmkTrainConfig
from aniportrait_lib.training.audio2lmk_config import Audio2LmkProfile, small_wav2vec2_config
from aniportrait_lib.training.lmk2video_config import Stage1TrainConfig, Stage2TrainConfig, VaePretrainConfig

__all__ = ["DEFAULT_PROFILE", "PROFILE_NAMES", "StageConfigs", "get_profile", "stage_configs"]

DEFAULT_PROFILE = "cpu"


@dataclass
class StageConfigs:
    """Everything one profile sets (see the module docstring)."""

    run: Profile
    corpus: CorpusConfig
    audio2lmk: Audio2LmkProfile
    lmk2video: Lmk2VideoProfile
    motion: MotionStudyProfile
    generation: GenerateConfig = field(default_factory=GenerateConfig)

    @property
    def name(self) -> str:
        return self.run.name


# --------------------------------------------------------------------------------------------------
# quick: the CI smoke run


def _quick() -> StageConfigs:
    encoder = small_wav2vec2_config(hidden=48, layers=2, heads=2, conv_dim=32)
    audio2lmk = Audio2LmkProfile(
        name="quick",
        encoder=encoder,
        mesh=Audio2MeshConfig(latent_dim=48, encoder=encoder),
        pose=Audio2PoseConfig(latent_dim=32, num_layers=2, num_heads=4, encoder=encoder),
        mesh_train=Audio2LmkTrainConfig(
            max_steps=300, batch_size=4, learning_rate=2e-3, warmup_steps=10, checkpoint_every=300, cpu=True
        ),
        pose_train=Audio2LmkTrainConfig(
            max_steps=60, batch_size=4, learning_rate=1e-3, warmup_steps=5, checkpoint_every=60, cpu=True
        ),
        data=AudioDatasetConfig(crop_frames=54),
        log_every=25,
        torch_threads=1,
    )
    lmk2video = small_lmk2video_profile(
        "quick", image_size=64, steps=60, vae_steps=80, eval_frames=4, eval_steps=10,
        final_steps=100, final_lr_decay_steps=40,
    )  # fmt: skip
    return StageConfigs(
        run=Profile(
            name="quick",
            description="CI smoke run: tiny configs, still real training and measurement, seconds to minutes",
            device="cpu",
            dtype="float32",
            requires_real_weights=False,
            minutes_per_notebook=2.0,
        ),
        corpus=CorpusConfig(n_clips=8, heldout_every=4),
        audio2lmk=audio2lmk,
        lmk2video=lmk2video,
        # stage 2: 40 steps is a smoke test, too few to change anything measurably
        motion=small_motion_study_profile(lmk2video, steps=40, clips=1, eval_frames=12),
    )


# --------------------------------------------------------------------------------------------------
# cpu: a 2-core laptop


def _cpu() -> StageConfigs:
    encoder = small_wav2vec2_config(hidden=128, layers=4, heads=4, conv_dim=64, dropout=0.05)
    audio2lmk = Audio2LmkProfile(
        name="cpu",
        encoder=encoder,
        mesh=Audio2MeshConfig(latent_dim=128, encoder=encoder),
        pose=Audio2PoseConfig(latent_dim=64, num_layers=2, num_heads=8, encoder=encoder),
        # Audio2Mesh, held-out cpu clips, 600 → 1200 steps: mouth-opening correlation 0.824 → 0.836 and
        # opening amplitude 0.86 → 0.95 × truth (notebook 05 renders it: a fuller motion survives the video
        # model's mouth noise better); 1800 steps: 0.835, 0.90 ×
        mesh_train=Audio2LmkTrainConfig(
            max_steps=1200, batch_size=8, learning_rate=1e-3, warmup_steps=30, checkpoint_every=400, cpu=True
        ),
        pose_train=Audio2LmkTrainConfig(
            max_steps=300, batch_size=8, learning_rate=5e-4, warmup_steps=20, checkpoint_every=150, cpu=True
        ),
        data=AudioDatasetConfig(crop_frames=60),
        log_every=50,
        # all cores (torch's default), as notebooks 03/04: make demo has the machine to itself. Audio2Mesh
        # step at this size on 2 cores with nothing else running: 170 ms with 1 thread, 111 ms with 2
        torch_threads=None,
    )
    # Lmk2Video stage 1, measured on held-out face crops (guider b; reference unchanged: 25.6 dB, 1.22 px),
    # constant lr: 1000 steps 25.3 dB / 1.09 px, 1500 steps 26.2 dB / 1.27 px, 2000 steps 26.7 dB / 1.13 px -
    # and, with another random stream, 25.6 dB / 1.11 px at 2000 steps: batches of 4 leave the weights noisy,
    # so the kit's model decays the learning rate over its last 1000 steps.
    # VAE 1500 steps, measured on 4 held-out clips' reconstructions (500 → 1500 steps): mouth-opening
    # correlation 0.75 → 0.92 (real frames: 0.91), landmarks 0.82 → 0.44 px, PSNR 28.3 → 34.8 dB; lip weight
    # 12 instead of 4 at 500 steps: 0.71.
    lmk2video = small_lmk2video_profile(
        "cpu", image_size=96, steps=500, vae_steps=1500, eval_frames=6, eval_steps=20,
        final_steps=2500, final_lr_decay_steps=1000, num_threads=None,  # all cores: make demo has them
        study_processes=2,  # stage 1: (b) and its longer run here, (a) and (c) beside them, a core each
    )  # fmt: skip
    return StageConfigs(
        run=Profile(
            name="cpu",
            description="a 2-core laptop: small configs trained on the mini corpus, meaningful numbers",
            device="cpu",
            dtype="float32",
            requires_real_weights=False,
            minutes_per_notebook=10.0,
        ),
        corpus=CorpusConfig(n_clips=40, heldout_every=5),
        audio2lmk=audio2lmk,
        lmk2video=lmk2video,
        # stage 2, 800 steps: held-out flicker -16 % (3.53 → 2.95 grey levels) with notebook 03's model,
        # ~4 min of training on a busy 2-core machine (see studies.configs for the other budgets measured)
        motion=small_motion_study_profile(lmk2video, steps=800, clips=3, eval_frames=24),
    )


# --------------------------------------------------------------------------------------------------
# gpu: the paper's scale


def _gpu() -> StageConfigs:
    encoder = wav2vec2_base_960h_config()
    audio2lmk = Audio2LmkProfile(
        name="gpu",
        encoder=encoder,
        mesh=Audio2MeshConfig(encoder=encoder),  # latent 512, out 1404 (inference_audio.yaml)
        pose=Audio2PoseConfig(encoder=encoder),  # latent 512, 8 layers, 8 heads
        mesh_train=Audio2LmkTrainConfig(
            max_steps=3000, batch_size=8, learning_rate=1e-4, warmup_steps=200, checkpoint_every=500
        ),
        pose_train=Audio2LmkTrainConfig(
            max_steps=3000, batch_size=8, learning_rate=1e-4, warmup_steps=200, checkpoint_every=500
        ),
        data=AudioDatasetConfig(crop_frames=90),
        pretrained_encoder=True,
        train_conv_extractor=False,  # maintainers' recipe with real weights
        log_every=100,
    )
    # One GPU, about an hour per notebook: the official recipes at full size with short budgets. Measured on
    # one H200 (benchmarks/cuda_check.py, stand-in weights): 0.36 s per stage-1 step at 512² × 2 in fp16
    # (36 GiB; torch AdamW, no bitsandbytes there); stage 2 (16 × 512²) not yet measured. Notebook 03
    # compares the guiders for 300 steps each from SD1.5 and trains (b) on to 600; notebook 04 fine-tunes the
    # released motion modules for 300 steps. Paper-length runs are `python -m aniportrait_lib.train`'s job
    # (recipe `official`: 300,000 and 40,000 steps).
    lmk2video = Lmk2VideoProfile(
        "gpu", Lmk2VideoModelConfig(), VaePretrainConfig(),
        replace(Stage1TrainConfig(), max_steps=300, checkpoint_every=300), Lmk2VideoEvalConfig(),
        final_steps=600,
    )  # fmt: skip
    motion = MotionStudyProfile(
        "gpu",
        replace(Stage2TrainConfig(), max_steps=300, checkpoint_every=300),
        MotionModuleConfig(),
        MotionEvalConfig(sampling=copy.deepcopy(lmk2video.evaluation)),
    )
    return StageConfigs(
        run=Profile(
            name="gpu",
            description="paper scale on a CUDA GPU with the real pretrained weights from the weights folder",
            device="cuda",
            dtype="float16",
            requires_real_weights=True,
            minutes_per_notebook=120.0,
        ),
        corpus=CorpusConfig(n_clips=48, image_size=512, heldout_every=6),
        audio2lmk=audio2lmk,
        lmk2video=lmk2video,
        motion=motion,
    )


_REGISTRY: dict[str, Callable[[], StageConfigs]] = {"quick": _quick, "cpu": _cpu, "gpu": _gpu}

PROFILE_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""The profiles there are: ``quick``, ``cpu``, ``gpu``."""


def stage_configs(name: str | None = None) -> StageConfigs:
    """Every stage's config for the profile ``name`` (``None``: :data:`DEFAULT_PROFILE`), freshly built,
    so a caller may change its copy (e.g. ``dataclasses.replace(configs.lmk2video.stage1, max_steps=10)``).

    Raises:
        ValueError: an unknown name (the message lists the profiles).
    """
    key = DEFAULT_PROFILE if name is None else str(name).strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)}")
    return _REGISTRY[key]()


def get_profile(name: str | Profile | None = None) -> Profile:
    """The run budget of a profile (a :class:`~.config.Profile` is returned as it is)."""
    if isinstance(name, Profile):
        return name
    return stage_configs(name).run
