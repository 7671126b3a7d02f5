"""The one profile registry: every stage's config per profile, fresh copies, the official recipe on gpu."""

import dataclasses

import pytest

from aniportrait_lib.config import GenerateConfig, Profile
from aniportrait_lib.models.lmk2video import Lmk2VideoModelConfig
from aniportrait_lib.profiles import DEFAULT_PROFILE, PROFILE_NAMES, get_profile, stage_configs
from aniportrait_lib.training.lmk2video_config import Stage1TrainConfig, Stage2TrainConfig


def test_three_profiles_with_expected_devices():
    assert PROFILE_NAMES == ("quick", "cpu", "gpu")
    assert get_profile("quick").device == "cpu" and get_profile("gpu").device == "cuda"
    assert get_profile("gpu").requires_real_weights and not get_profile("cpu").requires_real_weights
    for name in PROFILE_NAMES:
        configs = stage_configs(name)
        assert configs.name == configs.run.name == configs.audio2lmk.name == configs.lmk2video.name == name
        assert configs.motion.name == name and isinstance(configs.generation, GenerateConfig)


def test_default_and_case_insensitive_lookup():
    assert get_profile(None).name == DEFAULT_PROFILE == "cpu"
    assert get_profile(" Quick ").name == "quick"
    profile = get_profile("gpu")
    assert isinstance(profile, Profile) and get_profile(profile) is profile


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="quick, cpu, gpu"):
        stage_configs("laptop")


def test_each_call_builds_fresh_configs():
    first, second = stage_configs("cpu"), stage_configs("cpu")
    first.lmk2video.stage1 = dataclasses.replace(first.lmk2video.stage1, max_steps=7)
    first.lmk2video.model.unet["block_out_channels"][0] = 1
    assert second.lmk2video.stage1.max_steps == stage_configs("cpu").lmk2video.stage1.max_steps != 7
    assert stage_configs("cpu").lmk2video.model.unet["block_out_channels"][0] == 32


def test_gpu_is_the_official_recipe_and_small_profiles_shrink_only_sizes_and_budgets():
    gpu = stage_configs("gpu")
    budget = {"max_steps": 300, "checkpoint_every": 300}  # gpu notebooks: an hour's budget, else official
    assert gpu.lmk2video.stage1 == dataclasses.replace(Stage1TrainConfig(), **budget)
    assert gpu.motion.stage2 == dataclasses.replace(Stage2TrainConfig(), **budget)
    assert gpu.lmk2video.model == Lmk2VideoModelConfig() and gpu.corpus.image_size == 512
    official = Stage1TrainConfig()
    for name in ("quick", "cpu"):
        stage1 = stage_configs(name).lmk2video.stage1
        for field in ("noise_offset", "snr_gamma", "uncond_ratio", "reference_timestep", "scheduler"):
            assert getattr(stage1, field) == getattr(official, field), (name, field)
        assert stage1.cpu and stage1.max_steps < official.max_steps
    quick, cpu = stage_configs("quick"), stage_configs("cpu")
    assert quick.corpus.n_clips < cpu.corpus.n_clips and quick.lmk2video.stage1.image_size == 64
    assert cpu.lmk2video.stage1.image_size == 96 and cpu.lmk2video.final_steps == 2500
    assert cpu.motion.evaluation.sampling == cpu.lmk2video.evaluation  # notebook 04 samples as 03 does


def test_gpu_notebooks_never_start_a_paper_length_run():
    gpu = stage_configs("gpu")
    lmk, motion = gpu.lmk2video, gpu.motion
    study = lmk.stage1.max_steps * 3 + max(lmk.final_steps - lmk.stage1.max_steps, 0)
    steps = [
        study,
        motion.stage2.max_steps,
        gpu.audio2lmk.mesh_train.max_steps,
        gpu.audio2lmk.pose_train.max_steps,
    ]
    assert max(steps) <= 3000  # an hour's work on one GPU per notebook, not 300,000 / 40,000 steps
    from aniportrait_lib.recipes import load_recipe

    assert load_recipe("stage1", "official").sections["train"].max_steps == 300_000  # the command's job
    assert load_recipe("stage2", "official").sections["train"].max_steps == 40_000


def test_a_notebook_budget_scales_the_longer_run_with_it():
    lmk = stage_configs("quick").lmk2video
    halved = lmk.with_budget(lmk.stage1.max_steps // 2)
    assert halved.stage1.max_steps == lmk.stage1.max_steps // 2
    assert halved.final_steps == round(lmk.final_steps / 2) and halved.stage1.checkpoint_every <= 30
    assert halved.final_steps - halved.final_lr_decay_steps >= halved.stage1.max_steps  # still continues it
    assert lmk.with_budget(None) is lmk
    motion = stage_configs("gpu").motion.with_budget(20)
    assert motion.stage2.max_steps == 20 and motion.stage2.checkpoint_every == 20
    audio = stage_configs("cpu").audio2lmk.with_budget(5)
    assert audio.mesh_train.max_steps == audio.pose_train.max_steps == 5
