"""The Audio2Mesh / Audio2Pose checkpoint converter: manifests, both weight-norm spellings, errors."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import save_file

from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig
from aniportrait_lib.weights.audio_checkpoints import (
    check_state_dict,
    export_official,
    kit_to_official,
    load_audio2mesh,
    load_audio2pose,
    official_to_kit,
    read_state_dict,
)

SMALL = 200_000  # elements: tensors above this stay on the meta device in the round trip


def _manifest(reference_dir, name):
    data = json.loads((reference_dir / "manifests" / f"{name}.json").read_text())
    return {key: tuple(shape) for key, (shape, _dtype) in data["keys"].items()}


def _full_size_on_meta(name):
    with torch.device("meta"):
        return (
            Audio2Mesh(random_encoder_ok=True) if name == "audio2mesh" else Audio2Pose(random_encoder_ok=True)
        )


@pytest.mark.parametrize("name", ["audio2mesh", "audio2pose"])
def test_manifest_keys_map_to_kit_parameters_and_back(reference_dir, name):
    manifest = _manifest(reference_dir, name)
    kit = {k: tuple(v.shape) for k, v in _full_size_on_meta(name).state_dict().items()}
    renamed = {
        k: manifest[o] for o, k in zip(manifest, official_to_kit(dict.fromkeys(manifest)), strict=True)
    }
    assert renamed == kit  # same keys, same shapes (after the weight-norm rename only)
    assert set(kit_to_official(dict.fromkeys(kit))) == set(manifest)


@pytest.mark.parametrize("name", ["audio2mesh", "audio2pose"])
def test_manifest_shaped_tensors_round_trip(reference_dir, name):
    manifest = _manifest(reference_dir, name)
    official = {
        key: torch.randn(shape) if torch.Size(shape).numel() <= SMALL else torch.empty(shape, device="meta")
        for key, shape in manifest.items()
    }
    back = kit_to_official(official_to_kit(official))
    assert list(back) == list(official)
    for key, value in official.items():
        assert back[key] is value  # renaming never copies or alters a tensor
    check_state_dict(_full_size_on_meta(name), official_to_kit(official), f"{name}.json", False)


@pytest.fixture
def tiny_pose_model(make_wav2vec2_config):
    torch.manual_seed(0)
    config = Audio2PoseConfig(latent_dim=32, encoder=make_wav2vec2_config())
    return Audio2Pose(config, random_encoder_ok=True).eval()


def test_both_weight_norm_spellings_and_safetensors(tmp_path, tiny_pose_model):
    x, style = torch.randn(1, 3200), torch.tensor([3])
    expected = tiny_pose_model.infer(x, 6, style)
    config = tiny_pose_model.config
    for style_name, suffix in [
        ("weight_g", ".pt"),
        ("parametrizations", ".pt"),
        ("weight_g", ".safetensors"),
    ]:
        path = tmp_path / f"a2p_{style_name}{suffix}"
        if suffix == ".pt":
            export_official(tiny_pose_model, path, weight_norm=style_name)
        else:
            save_file(kit_to_official(tiny_pose_model.state_dict()), path)
        keys = set(read_state_dict(path))
        assert any(k.endswith("weight_g") for k in keys) == (style_name == "weight_g")
        loaded = load_audio2pose(path, config)
        for key, value in tiny_pose_model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    torch.testing.assert_close(loaded.infer(x, 6, style), expected)


def test_fp16_file_is_cast_to_model_dtype(tmp_path, tiny_pose_model):
    path = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in kit_to_official(tiny_pose_model.state_dict()).items()}, path)
    loaded = load_audio2pose(path, tiny_pose_model.config)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_file_without_encoder_uses_folder_or_warns(tmp_path, make_wav2vec2_config):
    torch.manual_seed(0)
    config = Audio2MeshConfig(latent_dim=32, encoder=make_wav2vec2_config())
    source = Audio2Mesh(config, random_encoder_ok=True)
    heads_only = {k: v for k, v in source.state_dict().items() if not k.startswith("audio_encoder.")}
    torch.save(heads_only, tmp_path / "audio2mesh.pt")
    with pytest.warns(UserWarning, match="audio2mesh.pt has no audio_encoder.* weights"):
        load_audio2mesh(tmp_path / "audio2mesh.pt", config)
    folder = tmp_path / "wav2vec2-base-960h"
    source.audio_encoder.save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_audio2mesh(tmp_path / "audio2mesh.pt", config, wav2vec2_dir=folder)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)


def test_mismatched_checkpoint_lists_every_problem(tmp_path, tiny_pose_model):
    state = kit_to_official(tiny_pose_model.state_dict())
    state["in_fn.weight"] = torch.zeros(16, 32)  # wrong shape
    state["pose_map_r.bias"] = torch.zeros(7)  # wrong shape
    del state["id_embed.weight"]  # missing
    state["extra_head.weight"] = torch.zeros(1)  # unexpected
    path = tmp_path / "broken_audio2pose.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as info:
        load_audio2pose(path, tiny_pose_model.config)
    message = str(info.value)
    assert "broken_audio2pose.pt" in message
    for key in ["in_fn.weight", "pose_map_r.bias", "id_embed.weight", "extra_head.weight"]:
        assert key in message
    assert "file (16, 32) vs model (32, 32)" in message


def test_partial_encoder_is_an_error(tmp_path, tiny_pose_model):
    state = kit_to_official(tiny_pose_model.state_dict())
    del state["audio_encoder.encoder.layer_norm.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="missing keys \\(1\\).*audio_encoder.encoder.layer_norm.weight"):
        load_audio2pose(tmp_path / "partial.pt", tiny_pose_model.config)


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a PyTorch or safetensors checkpoint"):
        read_state_dict(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "notensors.pt")
    with pytest.raises(ValueError, match="notensors.pt: not a state dict"):
        read_state_dict(tmp_path / "notensors.pt")
    with pytest.raises(ValueError, match="missing.pt: checkpoint not found"):
        read_state_dict(tmp_path / "missing.pt")
