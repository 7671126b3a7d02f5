"""The Lmk2Video checkpoint converter: manifests (full size, meta device), oracle round trips, errors."""

from __future__ import annotations

import json

import pytest
import torch

from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
from aniportrait_lib.models.unets import (
    build_denoising_unet,
    build_image_denoising_unet,
    build_reference_unet,
)
from aniportrait_lib.weights.lmk2video_checkpoints import (
    compare_state_dicts,
    convert_official_folder,
    export_kit_folder,
    kit_to_official_unet,
    load_checkpoint,
    load_into,
    official_to_kit_key,
    official_to_kit_unet,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)


@pytest.fixture(scope="module")
def full_size_models():
    """SD1.5-size kit models on the meta device (shapes only, nothing allocated)."""
    with torch.device("meta"):
        return {
            "denoising_unet": build_denoising_unet(),
            "reference_unet": build_reference_unet(),
            "image_denoiser": build_image_denoising_unet(),
            "pose_guider": MultiScalePoseGuider(),
        }


def _manifest(reference_dir, name):
    manifest = json.loads((reference_dir / "manifests" / f"{name}.json").read_text())
    assert len(manifest["keys"]) == manifest["num_keys"]
    return {key: tuple(shape) for key, (shape, _dtype) in manifest["keys"].items()}


@pytest.mark.parametrize(
    ("manifest", "model", "subset"),
    [
        ("denoising_unet", "denoising_unet", False),
        ("motion_module", "denoising_unet", True),
        ("denoising_unet_without_motion_modules", "denoising_unet", True),
        ("denoising_unet_without_motion_modules", "image_denoiser", False),
        ("reference_unet", "reference_unet", False),
        ("pose_guider", "pose_guider", False),
    ],
)
def test_manifest_converts_to_kit_and_back(reference_dir, full_size_models, manifest, model, subset):
    official = _manifest(reference_dir, manifest)
    kit_state = full_size_models[model].state_dict()
    kit_shapes = {k: tuple(v.shape) for k, v in kit_state.items()}
    converted = {}
    for key, shape in official.items():
        new_key = official_to_kit_key(key)
        if new_key is None:  # attention_blocks.1's table: must duplicate block 0's
            twin = key.replace(".attention_blocks.1.", ".attention_blocks.0.")
            assert official[twin] == shape
            continue
        converted[new_key] = shape
    report = compare_state_dicts(converted, kit_shapes, manifest)
    assert not report.unexpected and not report.mismatched, str(report)
    assert subset or not report.missing, str(report)
    # back: kit → official gives exactly the manifest's keys and shapes
    kit_part = {k: kit_state[k] for k in converted}
    back = {k: tuple(v.shape) for k, v in kit_to_official_unet(kit_part).items()}
    assert back == official


def test_oracle_denoiser_round_trip(oracle_dir):
    official = load_checkpoint(oracle_dir / "denoising_unet_sd.pt")
    kit = official_to_kit_unet(official, "denoising_unet_sd.pt")
    assert len(official) - len(kit) == sum(".attention_blocks.1.pos_encoder.pe" in k for k in official)
    back = kit_to_official_unet(kit)
    assert back.keys() == official.keys()
    assert all(torch.equal(back[k], official[k]) for k in official)


def test_differing_second_positional_table_is_an_error(oracle_dir):
    official = load_checkpoint(oracle_dir / "denoising_unet_sd.pt")
    key = next(k for k in official if k.endswith("attention_blocks.1.pos_encoder.pe"))
    official[key] = official[key] + 1
    with pytest.raises(ValueError, match="motion_module.pth.*differs"):
        official_to_kit_unet(official, "motion_module.pth")


def test_load_into_reports_missing_unexpected_and_misshaped(oracle_dir):
    config = MultiScalePoseGuiderConfig(latent_channels=64, num_attention_heads=2, attention_head_dim=8)
    guider = MultiScalePoseGuider(config)  # twice the oracle's width: most tensors are mis-shaped
    state = load_checkpoint(oracle_dir / "pose_guider_sd.pt")
    with pytest.raises(ValueError, match=r"pose_guider_sd.pt: .*mis-shaped"):
        load_into(guider, state, "pose_guider_sd.pt")
    small = {"scale": torch.ones(1, dtype=torch.float16), "extra.weight": torch.ones(2)}
    with pytest.raises(ValueError, match=r"x.pth: \d+ missing .*1 unexpected \[extra.weight\]"):
        load_into(guider, small, "x.pth")
    report = load_into(guider, {"scale": torch.full((1,), 3.0, dtype=torch.float16)}, "x.pth", strict=False)
    assert report.unexpected == [] and len(report.missing) > 100
    assert guider.scale.dtype == torch.float32 and guider.scale.item() == 3.0


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "reference_unet.pth")


def test_export_to_safetensors_folder_and_reload(tmp_path, oracle_dir):
    configs = json.loads((oracle_dir / "configs.json").read_text())
    reference = build_reference_unet(configs["unet2d"])
    state = {k: v.float() for k, v in load_checkpoint(oracle_dir / "reference_unet_sd.pt").items()}
    load_into(reference, state, "reference_unet_sd.pt")
    folder = export_kit_folder(reference, tmp_path / "reference_unet", configs["unet2d"])
    again = build_reference_unet(json.loads((folder / "config.json").read_text()))
    load_into(again, load_checkpoint(folder / "diffusion_pytorch_model.safetensors"), "exported")
    assert all(
        torch.equal(a, b)
        for a, b in zip(reference.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_convert_official_folder_loads_strictly_into_kit_models(tmp_path, oracle_dir):
    configs = json.loads((oracle_dir / "configs.json").read_text())
    official = tmp_path / "pretrained_weights"
    official.mkdir()
    denoiser = load_checkpoint(oracle_dir / "denoising_unet_sd.pt")
    torch.save({k: v for k, v in denoiser.items() if "motion_module" in k}, official / "motion_module.pth")
    torch.save(
        {k: v for k, v in denoiser.items() if "motion_module" not in k}, official / "denoising_unet.pth"
    )
    torch.save(load_checkpoint(oracle_dir / "reference_unet_sd.pt"), official / "reference_unet.pth")
    torch.save(load_checkpoint(oracle_dir / "pose_guider_sd.pt"), official / "pose_guider.pth")
    guider_config = dict(latent_channels=32, num_attention_heads=2, attention_head_dim=8)
    kit_configs = {
        "reference_unet": configs["unet2d"],
        "denoising_unet": configs["unet3d"],
        "pose_guider": guider_config,
    }
    folders = convert_official_folder(official, tmp_path / "kit", kit_configs, dtype=torch.float32)
    models = {
        "reference_unet": build_reference_unet(configs["unet2d"]),
        "denoising_unet": build_denoising_unet(
            json.loads((folders["denoising_unet"] / "config.json").read_text())
        ),
        "pose_guider": MultiScalePoseGuider(MultiScalePoseGuiderConfig(**guider_config)),
    }
    for name, model in models.items():
        state = load_checkpoint(folders[name] / "diffusion_pytorch_model.safetensors")
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
        assert load_into(model, state, name).ok
