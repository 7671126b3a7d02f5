"""``benchmarks/standin_weights.py``: writers at tiny sizes, the full layout as sparse skeletons, loading.

Nothing here writes the real 17 GB: full-size files are written without data (``--skeleton``, sparse), and
the data path is checked on tiny tensors and tiny configs of the same formats.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aniportrait_lib.audio.encoder import build_audio_encoder
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import SMALL_VAE_CONFIG, TINY_CLIP_CONFIG
from aniportrait_lib.weights.__main__ import main as weights_cli
from aniportrait_lib.weights.animatediff import animatediff_manifest
from aniportrait_lib.weights.deep_check import deep_check

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "standin_weights.py"
TINY = {
    "a.weight": ((3, 4), "float32"),
    "b.running_var": ((5,), "float16"),
    "c.num_batches_tracked": ((), "int64"),
    "d.attention_blocks.0.pos_encoder.pe": ((1, 4, 6), "float32"),
    "e.position_ids": ((1, 7), "int64"),
    "f.weight": ((2, 2), "bfloat16"),
}


@pytest.fixture(scope="module")
def standin():
    """The script as a module (``benchmarks`` is not a package)."""
    spec = importlib.util.spec_from_file_location("standin_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_writers_round_trip_tiny_tensors(standin, tmp_path, suffix):
    path = tmp_path / f"tiny{suffix}"
    writer = standin.write_safetensors if suffix == ".safetensors" else standin.write_torch
    writer(path, TINY, seed=3)
    state = load_file(path) if suffix == ".safetensors" else torch.load(path, weights_only=True)
    assert set(state) == set(TINY)
    for key, (shape, dtype) in TINY.items():
        assert state[key].dtype == getattr(torch, dtype) and tuple(state[key].shape) == shape
        assert torch.equal(state[key], standin.standin_tensor(key, shape, dtype, seed=3)), key
    assert torch.equal(state["e.position_ids"], torch.arange(7)[None])
    assert torch.equal(state["b.running_var"], torch.ones(5, dtype=torch.float16))
    assert not torch.equal(standin.standin_tensor("a.weight", (3, 4), "float32", seed=4), state["a.weight"])


def test_hf_folders_load_through_the_kits_builders(standin, tmp_path, make_wav2vec2_config):
    """The public files' older key names (VAE attentions, weight_g, position_ids) load, at tiny sizes."""
    folders = {name: tmp_path / name for name in ("vae", "clip", "w2v")}
    w2v = make_wav2vec2_config(num_hidden_layers=1)
    with torch.device("meta"):
        entries = {
            "vae": standin.vae_entries(SMALL_VAE_CONFIG),
            "clip": standin.image_encoder_entries(TINY_CLIP_CONFIG),
            "w2v": standin.wav2vec2_entries(w2v),
        }
    assert "encoder.mid_block.attentions.0.query.weight" in entries["vae"]
    assert (
        "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in entries["w2v"]
        and "lm_head.weight" in entries["w2v"]
    )
    configs = {
        "vae": {"_class_name": "AutoencoderKL", **SMALL_VAE_CONFIG},
        "clip": standin._hf_config(
            standin.CLIPVisionConfig(**TINY_CLIP_CONFIG), "CLIPVisionModelWithProjection"
        ),
        "w2v": standin._hf_config(w2v, "Wav2Vec2ForCTC"),
    }
    files = {
        "vae": "diffusion_pytorch_model.safetensors",
        "clip": "model.safetensors",
        "w2v": "model.safetensors",
    }
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(configs[name]))
        standin.write_safetensors(folder / files[name], entries[name])
    vae = build_vae(folder=folders["vae"])
    query = entries["vae"]["decoder.mid_block.attentions.0.query.weight"]
    assert torch.equal(
        vae.decoder.mid_block.attentions[0].to_q.weight,
        standin.standin_tensor("decoder.mid_block.attentions.0.query.weight", *query),
    )
    clip = build_clip_image_encoder(folder=folders["clip"])
    key = "vision_model.embeddings.patch_embedding.weight"
    assert torch.equal(clip.state_dict()[key], standin.standin_tensor(key, *entries["clip"][key]))
    encoder = build_audio_encoder(w2v, folders["w2v"])
    g = "wav2vec2.encoder.pos_conv_embed.conv.weight_g"
    loaded = encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original0
    assert torch.equal(loaded, standin.standin_tensor(g, *entries["w2v"][g]))


def test_select_accepts_files_folders_and_component_names(standin):
    def names(*only):
        return [part.component for part in standin.select(list(only) or None)]

    assert names() == [part.component for part in standin.parts()] and len(names()) == 11
    assert names("vae") == names("sd-vae-ft-mse/") == names("sd-vae-ft-mse") == ["vae"]
    assert names("stable-diffusion-v1-5", "pose_guider.pth", "pose_guider") == ["sd15_unet", "pose_guider"]
    with pytest.raises(ValueError, match="--only nope: not a part"):
        standin.select(["nope"])


def test_official_files_match_the_reference_manifests(standin, reference_dir):
    manifests = {
        "denoising_unet": "denoising_unet_without_motion_modules",  # the released file: 2-D part, 3.44 GB
        "animatediff": "motion_module",  # same layout as AnimateDiff v2
    }
    for part in standin.parts():
        if part.weights.endswith((".pt", ".pth", ".ckpt")):
            name = manifests.get(part.component, part.component)
            keys = json.loads((reference_dir / "manifests" / f"{name}.json").read_text())["keys"]
            with torch.device("meta"):
                entries = part.entries()
            assert entries == {k: (tuple(shape), dtype) for k, (shape, dtype) in keys.items()}, part.component
    assert standin.select(["animatediff"])[0].entries() == animatediff_manifest()


def test_only_some_parts_at_full_size_pass_the_deep_check(standin, tmp_path, capsys):
    only = ["pose_guider.pth", "audio2pose.pt", "mm_sd_v15_v2.ckpt"]
    assert standin.main([str(tmp_path), "--only", *only, "--skeleton"]) == 0
    results = deep_check(tmp_path)
    assert [r.component for r in results] == ["audio2pose", "pose_guider", "animatediff"]
    assert all(r.ok for r in results) and "written files: keys, shapes" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(only)  # nothing else, no temporary files


@pytest.mark.slow
def test_full_layout_as_skeletons_passes_weights_check_deep(standin, tmp_path, capsys):
    """All 11 parts at full size without data (~17 GB of holes), float16: the kit's checks accept them."""
    assert standin.main([str(tmp_path), "--skeleton", "--dtype", "float16"]) == 0
    out = capsys.readouterr().out
    assert "11 files, 17.41 GB" not in out and "11 files, 8.7" in out  # float16 halves the floats
    assert weights_cli(["check", str(tmp_path), "--deep"]) == 0
    out = capsys.readouterr().out
    assert out.count("  ok       ") == 7 and "MISMATCH" not in out and "(float16; the published" in out
    config = json.loads((tmp_path / "stable-diffusion-v1-5/unet/config.json").read_text())
    assert config["_class_name"] == "UNet2DConditionModel" and config["block_out_channels"][-1] == 1280
