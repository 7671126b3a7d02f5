"""``weights check --deep`` on tiny official-format files made from the kit's own networks."""

import torch

from aniportrait_lib.audio.audio2mesh import Audio2Mesh, Audio2MeshConfig
from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet
from aniportrait_lib.weights.__main__ import main as weights_cli
from aniportrait_lib.weights.audio_checkpoints import kit_to_official
from aniportrait_lib.weights.deep_check import deep_check, read_shapes
from aniportrait_lib.weights.lmk2video_checkpoints import kit_to_official_unet


def _write_official_files(folder, unet_config, make_wav2vec2_config):
    def audio2mesh_config():  # a 1-layer wav2vec2 (tests/conftest.py: tiny_wav2vec2_config)
        return Audio2MeshConfig(latent_dim=16, encoder=make_wav2vec2_config(num_hidden_layers=1))

    torch.manual_seed(0)
    torch.save(build_reference_unet(unet_config).state_dict(), folder / "reference_unet.pth")
    official = kit_to_official_unet(build_denoising_unet(unet_config).state_dict())
    torch.save({k: v for k, v in official.items() if "motion_module" not in k}, folder / "denoising_unet.pth")
    torch.save({k: v for k, v in official.items() if "motion_module" in k}, folder / "motion_module.pth")
    mesh = Audio2Mesh(audio2mesh_config(), random_encoder_ok=True)
    heads = {
        k: v for k, v in kit_to_official(mesh.state_dict()).items() if not k.startswith("audio_encoder.")
    }
    torch.save(heads, folder / "audio2mesh.pt")  # released files may omit the encoder
    return {"audio2mesh": audio2mesh_config()}


def test_matching_files_pass_and_absent_ones_are_skipped(tmp_path, micro_unet_config, make_wav2vec2_config):
    audio = _write_official_files(tmp_path, micro_unet_config, make_wav2vec2_config)
    checked = deep_check(tmp_path, unet_config=micro_unet_config, audio_configs=audio)
    results = {r.component: r for r in checked}
    assert set(results) == {"reference_unet", "denoising_unet", "motion_module", "audio2mesh"}
    assert all(r.ok for r in results.values()), [r.describe() for r in results.values()]
    assert "audio_encoder" in results["audio2mesh"].note


def test_mismatches_are_listed(tmp_path, micro_unet_config, make_wav2vec2_config):
    audio = _write_official_files(tmp_path, micro_unet_config, make_wav2vec2_config)
    state = torch.load(tmp_path / "reference_unet.pth", weights_only=True)
    key = next(k for k in state if k.endswith("conv_in.weight"))
    state[key] = torch.zeros(8, 4, 3, 3)
    state["extra.weight"] = torch.zeros(1)
    del state[next(k for k in state if k.endswith("time_embedding.linear_1.weight"))]
    torch.save(state, tmp_path / "reference_unet.pth")
    checked = deep_check(tmp_path, micro_unet_config, audio)
    result = next(r for r in checked if r.component == "reference_unet")
    assert not result.ok
    assert result.unexpected == ["extra.weight"]
    assert result.missing == ["time_embedding.linear_1.weight"]
    assert result.mismatched[key] == ((8, 4, 3, 3), (32, 4, 3, 3))
    assert "MISMATCH" in result.describe() and "conv_in.weight" in result.describe()


def test_pose_guider_at_paper_size_is_checked_on_the_meta_device(tmp_path):
    with torch.device("meta"):
        expected = MultiScalePoseGuider(MultiScalePoseGuiderConfig()).state_dict()
    assert sum(v.numel() for v in expected.values() if v.dtype.is_floating_point) > 160_000_000
    tiny = MultiScalePoseGuider(
        MultiScalePoseGuiderConfig(latent_channels=32, num_attention_heads=2, attention_head_dim=8)
    )
    torch.save(tiny.state_dict(), tmp_path / "pose_guider.pth")  # a small file is not the released guider
    (result,) = deep_check(tmp_path)
    assert result.component == "pose_guider" and not result.ok and result.mismatched


def test_unreadable_file_names_itself(tmp_path):
    (tmp_path / "pose_guider.pth").write_bytes(b"garbage")
    try:
        read_shapes(tmp_path / "pose_guider.pth")
    except ValueError as err:
        assert "pose_guider.pth" in str(err)
    else:
        raise AssertionError("expected a ValueError")


def test_cli_deep_flag(tmp_path, capsys, micro_unet_config, make_wav2vec2_config):
    _write_official_files(tmp_path, micro_unet_config, make_wav2vec2_config)
    weights_cli(["check", str(tmp_path), "--deep"])
    out = capsys.readouterr().out
    assert "deep check" in out and "reference_unet" in out
