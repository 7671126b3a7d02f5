"""Audio2Lmk's config: each profile's models build, the conv extractor is trainable only without
pretrained weights."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from aniportrait_lib.audio import Audio2Mesh, Audio2Pose
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.training.audio2lmk_config import (
    build_audio2mesh,
    build_audio2pose,
    unfreeze_conv_extractor,
)


def audio2lmk_profile(name: str, **overrides):
    return dataclasses.replace(stage_configs(name).audio2lmk, **overrides)


def _conv_trainable(model) -> bool:
    return all(p.requires_grad for p in model.audio_encoder.feature_extractor.parameters())


@pytest.mark.parametrize("name", ["quick", "cpu"])
def test_small_profiles_build_trainable_models(name):
    profile = audio2lmk_profile(name)
    assert not profile.pretrained_encoder and profile.train_conv_extractor
    assert profile.data.crop_frames % 3 == 0  # whole samples per window at 30 fps / 16 kHz
    torch.manual_seed(0)
    mesh, pose = build_audio2mesh(profile), build_audio2pose(profile)
    assert isinstance(mesh, Audio2Mesh) and isinstance(pose, Audio2Pose)
    assert _conv_trainable(mesh) and _conv_trainable(pose)
    out = mesh(torch.randn(1, 16000), 30)
    assert out.shape == (1, 30, 1404)
    assert sum(p.numel() for p in mesh.parameters()) < 3_000_000  # small enough for 2 CPU cores


def test_quick_is_smaller_than_cpu_and_gpu_is_paper_size():
    quick, cpu, gpu = (audio2lmk_profile(n) for n in ("quick", "cpu", "gpu"))
    assert quick.encoder.hidden_size < cpu.encoder.hidden_size < gpu.encoder.hidden_size == 768
    assert quick.mesh_train.max_steps < cpu.mesh_train.max_steps
    assert gpu.mesh.latent_dim == gpu.pose.latent_dim == 512 and gpu.encoder.num_hidden_layers == 12
    assert gpu.pretrained_encoder and not gpu.train_conv_extractor  # maintainers' recipe


def test_gpu_profile_without_weights_warns_and_trains_the_conv_extractor(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIPORTRAIT_WEIGHTS", str(tmp_path))  # empty weights folder
    profile = audio2lmk_profile("gpu", mesh=audio2lmk_profile("quick").mesh)  # small model, gpu rules
    with pytest.warns(UserWarning, match="no wav2vec2-base-960h folder"):
        model = build_audio2mesh(profile)
    assert _conv_trainable(model)  # random weights: a frozen random filter bank would be weak


def test_unfreeze_conv_extractor():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Audio2Mesh(audio2lmk_profile("quick").mesh, random_encoder_ok=True)
    assert not _conv_trainable(model)  # official freeze at construction
    unfreeze_conv_extractor(model.audio_encoder)
    assert _conv_trainable(model) and model.audio_encoder.feature_extractor._requires_grad
