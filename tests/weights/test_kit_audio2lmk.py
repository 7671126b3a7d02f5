"""Notebook 02's export: both audio models back from the folder alone, complete-or-absent."""

import json

import pytest
import torch

from aniportrait_lib.audio.inference import MotionConfig
from aniportrait_lib.weights import kit_audio2lmk as audio2lmk_export
from aniportrait_lib.weights.kit_audio2lmk import (
    AUDIO2LMK_CONFIG_FILE,
    KIT_MOTION,
    load_audio2lmk_run,
    save_audio2lmk_run,
)


def _trained_like(pair):
    """The tiny pair with every weight moved off its initial value (out_fn starts at zero)."""
    mesh, pose = pair
    with torch.no_grad():
        for model in (mesh, pose):
            for parameter in model.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
    return mesh, pose


def test_round_trip_gives_the_same_models_and_settings(fresh_tiny_audio_models, tmp_path):
    mesh, pose = _trained_like(fresh_tiny_audio_models)
    written = save_audio2lmk_run(tmp_path / "audio2lmk", mesh, pose, "quick")
    assert sorted(written) == ["audio2mesh", "audio2pose", "config", "index"]
    run = load_audio2lmk_run(tmp_path / "audio2lmk")
    for trained, loaded in ((mesh, run.audio2mesh), (pose, run.audio2pose)):
        state = loaded.state_dict()
        assert state.keys() == trained.state_dict().keys()
        assert all(torch.equal(value, state[key]) for key, value in trained.state_dict().items())
        assert loaded.config.encoder.hidden_size == 32 and not loaded.training
    assert run.audio2mesh.config.latent_dim == 16 and run.audio2pose.config.num_layers == 1
    assert run.motion == KIT_MOTION and run.motion.rotation_scale == 1.0 and run.profile == "quick"
    saved = json.loads((tmp_path / "audio2lmk" / AUDIO2LMK_CONFIG_FILE).read_text())
    assert saved["audio2mesh"]["config"]["encoder"]["conv_dim"] == [16] * 7  # the wav2vec2 config travels
    files = torch.load(written["audio2mesh"], weights_only=True)
    assert any(k.endswith("pos_conv_embed.conv.weight_g") for k in files)  # official key names


def test_motion_settings_are_kept(fresh_tiny_audio_models, tmp_path):
    save_audio2lmk_run(tmp_path, *fresh_tiny_audio_models, "gpu", motion=MotionConfig())
    assert load_audio2lmk_run(tmp_path).motion.rotation_scale == 0.5


def test_missing_or_unfinished_export_is_reported(fresh_tiny_audio_models, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="notebook 02"):
        load_audio2lmk_run(tmp_path)
    save_audio2lmk_run(tmp_path, *fresh_tiny_audio_models, "quick")
    calls = []

    def dies_on_second_file(obj, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while writing")
        torch.save(obj, path)

    monkeypatch.setattr(audio2lmk_export, "atomic_torch_save", dies_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        save_audio2lmk_run(tmp_path, *fresh_tiny_audio_models, "quick")
    assert not (tmp_path / AUDIO2LMK_CONFIG_FILE).exists()  # re-export killed: the folder reads incomplete
    with pytest.raises(FileNotFoundError):
        load_audio2lmk_run(tmp_path)


def test_shape_mismatch_names_the_file(fresh_tiny_audio_models, tmp_path):
    save_audio2lmk_run(tmp_path, *fresh_tiny_audio_models, "quick")
    payload = json.loads((tmp_path / AUDIO2LMK_CONFIG_FILE).read_text())
    payload["audio2mesh"]["config"]["latent_dim"] = 24
    (tmp_path / AUDIO2LMK_CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="audio2mesh.pt"):
        load_audio2lmk_run(tmp_path)
