"""Broken weight files: each kind ends in ONE ValueError naming the file and the problem in plain words.

One test per failure class (truncated, corrupt bytes, pickled code, not a state dict, wrong shapes, a wrong
motion-module file, a corrupt HF folder, a corrupt FILM file, the deep check), each on a small file made here;
and memory-mapped reading, which must give the same tensors as reading the file whole.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.serialization import skip_data

from aniportrait_lib.audio.encoder import TimeAlignedWav2Vec2, build_audio_encoder
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet
from aniportrait_lib.pipelines.interpolation import FilmInterpolator
from aniportrait_lib.training.checkpoint import load_training_state, save_training_state
from aniportrait_lib.weights.__main__ import main as weights_cli
from aniportrait_lib.weights.audio_checkpoints import read_state_dict
from aniportrait_lib.weights.deep_check import deep_check, expected_entries
from aniportrait_lib.weights.kit_lmk2video import load_motion_module
from aniportrait_lib.weights.lmk2video_checkpoints import (
    kit_to_official_unet,
    load_checkpoint,
    load_into,
    load_official_denoising_unet,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)

TORCH_ADVICE = ("weights_only=False", "weights_only` set to `False", "add_safe_globals", "miniz", "trust")
"""Pieces of torch's own error text that must never reach the user (it suggests unsafe loading)."""


def _assert_plain(error: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    """The message starts with the file, holds every one of ``words``, and none of torch's advice."""
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, (word, message)
    for advice in TORCH_ADVICE:
        assert advice not in message, (advice, message)
    return message


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(8, 4, 3, 3, generator=generator),
        "conv.bias": torch.randn(8, generator=generator),
        "half": torch.randn(5, 7, generator=generator).half(),
        "brain": torch.randn(3, generator=generator).bfloat16(),
        "steps": torch.arange(6),
        "mask": torch.tensor([True, False, True]),
    }


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


class _Opaque:  # a class: unpickling it would import and run Python code
    pass


def _pickled_function():  # a function: the same
    return None


# ---------------------------------------------------------------------------------------------------------
# the reader: one message per failure class


def test_truncated_files_say_truncated(tmp_path):
    zipped, legacy = tmp_path / "motion_module.pth", tmp_path / "old.pth"
    torch.save(_state(), zipped)
    torch.save(_state(), legacy, _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    save_file(_state(), tmp_path / "kit.safetensors")
    (tmp_path / "empty.pth").write_bytes(b"")
    for path in (zipped, tmp_path / "kit.safetensors", tmp_path / "empty.pth"):
        _truncate(path)
        with pytest.raises(ValueError) as error:
            load_checkpoint(path)
        _assert_plain(error, path, "truncated")
    _truncate(legacy, 0.97)  # cut in its last tensor's data
    with pytest.raises(ValueError) as error:
        load_checkpoint(legacy)
    _assert_plain(error, legacy, "truncated")


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    noise = random.Random(0).randbytes(4096)
    assert not noise.startswith((b"PK", b"\x80"))
    for name, content in (
        ("reference_unet.pth", noise),
        ("unet.safetensors", noise),
        ("notes.pth", b"hello, this is not a checkpoint\n" * 20),
        ("pose_guider.pth", b"\x80\x02" + noise),  # a pickle, but not torch.save's
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError) as error:
            load_checkpoint(tmp_path / name)
        _assert_plain(error, tmp_path / name, "not a PyTorch or safetensors checkpoint")
    (tmp_path / "lfs.pth").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 12\n")
    with pytest.raises(ValueError) as error:
        load_checkpoint(tmp_path / "lfs.pth")
    _assert_plain(error, tmp_path / "lfs.pth", "Git LFS pointer")


@pytest.mark.parametrize("legacy", [False, True])
def test_pickled_code_is_refused_without_suggesting_unsafe_loading(tmp_path, legacy):
    for name, payload in (("object.pth", _Opaque()), ("function.pth", _pickled_function)):
        path = tmp_path / name
        torch.save({"x": torch.zeros(2), "y": payload}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(ValueError) as error:
            load_checkpoint(path)
        message = _assert_plain(error, path, "contains pickled Python objects that are not tensors")
        assert "weights_only=True" in message
        assert ("_Opaque" if name == "object.pth" else "_pickled_function") in message
        with pytest.raises(ValueError) as error:  # the audio loader reads through the same reader
            read_state_dict(path)
        _assert_plain(error, path, "pickled Python objects")


def test_files_that_are_not_state_dicts(tmp_path):
    cases = {
        "list.pth": ([torch.zeros(2)], "it holds a list"),
        "tensor.pth": (torch.zeros(2, 3), "a single tensor of shape (2, 3)"),
        "mixed.pth": (
            {"weight": torch.zeros(2), "step": 7, "name": "x"},
            "2 of its 3 entries are not tensors",
        ),
        "empty_dict.pth": ({}, "holds no tensors"),
    }
    for name, (payload, words) in cases.items():
        torch.save(payload, tmp_path / name)
        with pytest.raises(ValueError) as error:
            load_checkpoint(tmp_path / name)
        _assert_plain(error, tmp_path / name, "not a state dict", words)
    # a {"state_dict": ...} wrapper with other entries beside it is a state dict
    torch.save({"state_dict": {"w": torch.ones(2)}, "global_step": 3}, tmp_path / "wrapped.ckpt")
    assert torch.equal(load_checkpoint(tmp_path / "wrapped.ckpt")["w"], torch.ones(2))


def test_wrong_shapes_name_the_file_for_weights_and_training_checkpoints(tmp_path):
    torch.manual_seed(0)
    saved = save_training_state(tmp_path, 3, nn.Linear(4, 3))
    wider = nn.Linear(4, 5)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_training_state(saved, wider, restore_rng=False)
    _assert_plain(error, saved, "does not fit", "mis-shaped", "weight: file (3, 4) vs model (5, 4)")
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())  # nothing restored
    _truncate(saved)
    with pytest.raises(ValueError) as error:
        load_training_state(saved, nn.Linear(4, 3), restore_rng=False)
    _assert_plain(error, saved, "truncated")
    torch.save({"weight": torch.zeros(5, 4), "bias": torch.zeros(5)}, tmp_path / "linear.pth")
    with pytest.raises(ValueError, match=r"linear.pth: .*mis-shaped"):
        load_into(nn.Linear(4, 3), load_checkpoint(tmp_path / "linear.pth"), "linear.pth")


# ---------------------------------------------------------------------------------------------------------
# a wrong motion-module file


def test_a_2d_unet_file_given_as_motion_modules_names_what_it_is(tmp_path, micro_unet_config):
    torch.manual_seed(0)
    unet = build_denoising_unet(micro_unet_config)
    path = tmp_path / "motion_module-5.pth"
    torch.save(build_reference_unet(micro_unet_config).state_dict(), path)  # reference_unet.pth by mistake
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_motion_module(unet, path)
    message = _assert_plain(
        error, path, "not the motion modules", "2-D UNet checkpoint", "no motion_modules keys"
    )
    motion_keys = [k for k in unet.state_dict() if "motion_modules" in k]
    assert f"missing {len(motion_keys)} (" in message and motion_keys[0] in message
    assert len(message) < 1000  # a count and the first few, not hundreds of keys
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())  # nothing was loaded

    # the official pair: denoising_unet.pth with the wrong motion_module.pth
    official = kit_to_official_unet(build_denoising_unet(micro_unet_config).state_dict())
    spatial = {k: v for k, v in official.items() if "motion_module" not in k}
    partial = {k: v for k, v in official.items() if "motion_module" in k and "up_blocks" not in k}
    up = [k for k in motion_keys if k.startswith("up_blocks")]
    cases = (
        (load_checkpoint(path), "2-D UNet checkpoint", motion_keys),
        (partial, "tensors in 3 modules", up),
    )
    for motion, what, missing in cases:
        with pytest.raises(ValueError) as error:
            load_official_denoising_unet(unet, spatial, motion)
        message = str(error.value)
        assert message.startswith("motion_module.pth: not the motion modules") and what in message, message
        assert f"missing {len(missing)} ({missing[0]}, " in message and len(message) < 1000
    load_official_denoising_unet(unet, spatial, {k: v for k, v in official.items() if "motion_module" in k})


# ---------------------------------------------------------------------------------------------------------
# Hugging Face folders (from_pretrained) and FILM (TorchScript)


def _weights_file(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")]
    return found


def test_corrupt_safetensors_in_hf_folders(tmp_path, make_wav2vec2_config):
    vae = {"block_out_channels": [8], "down_block_types": ["DownEncoderBlock2D"],
           "up_block_types": ["UpDecoderBlock2D"], "layers_per_block": 1, "norm_num_groups": 4}  # fmt: skip
    build_vae(vae).save_pretrained(tmp_path / "vae")
    clip = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 8, "patch_size": 4, "projection_dim": 4}  # fmt: skip
    build_clip_image_encoder(clip).save_pretrained(tmp_path / "image_encoder")
    config = make_wav2vec2_config(num_hidden_layers=1)
    TimeAlignedWav2Vec2(config).save_pretrained(tmp_path / "wav2vec2")
    loaders = {
        "vae": lambda: build_vae(folder=tmp_path / "vae"),
        "image_encoder": lambda: build_clip_image_encoder(folder=tmp_path / "image_encoder"),
        "wav2vec2": lambda: build_audio_encoder(config, tmp_path / "wav2vec2"),
    }
    for name, load in loaders.items():
        load()  # intact: loads
        weights = _weights_file(tmp_path / name)
        original = weights.read_bytes()
        _truncate(weights)
        with pytest.raises(ValueError) as error:
            load()
        _assert_plain(error, weights, "cannot load", "truncated")
        weights.write_bytes(random.Random(1).randbytes(len(original)))
        with pytest.raises(ValueError) as error:
            load()
        _assert_plain(error, weights, "corrupt")
        weights.write_bytes(original)


class _Midpoint(nn.Module):
    def forward(self, img0: torch.Tensor, img1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return img0 * (1 - dt[0, 0]) + img1 * dt[0, 0]


def test_corrupt_film_file(tmp_path):
    path = tmp_path / "film_net_fp16.pt"
    torch.jit.script(_Midpoint()).save(str(path))
    FilmInterpolator(path)  # intact: loads
    _truncate(path)
    with pytest.raises(ValueError) as error:
        FilmInterpolator(path)
    _assert_plain(error, path, "truncated")
    path.write_bytes(random.Random(2).randbytes(2048))
    with pytest.raises(ValueError) as error:
        FilmInterpolator(path)
    _assert_plain(error, path, "not a TorchScript model")
    torch.save({"w": torch.zeros(2)}, path)  # weights without the model's code
    with pytest.raises(ValueError) as error:
        FilmInterpolator(path)
    _assert_plain(error, path, "not a TorchScript model", "torch.save checkpoint")


# ---------------------------------------------------------------------------------------------------------
# weights check --deep


_ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "bool": "BOOL"}


def _skeleton(path: Path, entries) -> None:
    """A zip checkpoint with these keys, shapes and dtypes whose data is never written (a sparse file)."""
    with FakeTensorMode():
        state = {k: torch.empty(shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in entries.items()}
    with skip_data(materialize_fake_tensors=True):
        torch.save(state, path)


def _complete_folder(folder: Path, unet_config: dict) -> None:
    """Every required component present: the UNet files real (micro UNet, its config in the folder), the
    released-size ones (pose guider, audio models) as skeletons, the HF folders as placeholders (the deep
    check does not open them)."""
    import json

    sd_unet = folder / "stable-diffusion-v1-5" / "unet"
    sd_unet.mkdir(parents=True)
    (sd_unet / "config.json").write_text(json.dumps(unet_config))
    placeholders = {
        "stable-diffusion-v1-5/unet": ["diffusion_pytorch_model.safetensors"],
        "sd-vae-ft-mse": ["config.json", "diffusion_pytorch_model.safetensors"],
        "image_encoder": ["config.json", "model.safetensors"],
        "wav2vec2-base-960h": ["config.json", "preprocessor_config.json", "model.safetensors"],
    }
    for sub, names in placeholders.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / sub / name).write_text("{}")
    torch.manual_seed(0)
    torch.save(build_reference_unet(unet_config).state_dict(), folder / "reference_unet.pth")
    official = kit_to_official_unet(build_denoising_unet(unet_config).state_dict())
    torch.save({k: v for k, v in official.items() if "motion_module" not in k}, folder / "denoising_unet.pth")
    torch.save({k: v for k, v in official.items() if "motion_module" in k}, folder / "motion_module.pth")
    builders = expected_entries(folder)
    for name, file in (("pose_guider", "pose_guider.pth"), ("audio2mesh", "audio2mesh.pt"),
                       ("audio2pose", "audio2pose.pt")):  # fmt: skip
        with torch.device("meta"):
            entries = builders[name]()
        _skeleton(folder / file, entries)


def test_deep_check_fails_unreadable_and_wrong_files_and_exits_non_zero(tmp_path, capsys, micro_unet_config):
    _complete_folder(tmp_path, micro_unet_config)
    assert weights_cli(["check", str(tmp_path), "--deep"]) == 0, capsys.readouterr().out
    capsys.readouterr()

    motion = tmp_path / "motion_module.pth"
    intact = motion.read_bytes()
    _truncate(motion)
    torch.save({"x": _Opaque()}, tmp_path / "pose_guider.pth")
    assert weights_cli(["check", str(tmp_path), "--deep"]) == 1
    out = capsys.readouterr().out
    deep = out.split("deep check", 1)[1]
    rows = {
        line.split()[1]: line for line in deep.splitlines() if line.startswith("  ") and len(line.split()) > 2
    }
    assert rows["motion_module"].startswith("  UNREADABLE") and "truncated" in rows["motion_module"]
    assert rows["pose_guider"].startswith("  UNREADABLE") and "pickled Python objects" in rows["pose_guider"]
    assert rows["reference_unet"].startswith("  ok")
    assert "2 checkpoint(s) unreadable" in out and not any(advice in out for advice in TORCH_ADVICE)

    motion.write_bytes(intact)
    shutil.copy(tmp_path / "reference_unet.pth", motion)  # the wrong file in motion_module.pth's place
    results = {r.component: r for r in deep_check(tmp_path)}
    assert not results["motion_module"].ok and "2-D UNet checkpoint" in results["motion_module"].note
    assert weights_cli(["check", str(tmp_path), "--deep"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH motion_module" in out and "looks like a 2-D UNet checkpoint" in out


# ---------------------------------------------------------------------------------------------------------
# memory-mapped reading


def test_memory_mapped_reading_gives_the_same_tensors(tmp_path):
    from safetensors.torch import save_file

    state = _state()
    torch.save(state, tmp_path / "zip.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)  # read whole
    save_file(state, tmp_path / "kit.safetensors")
    for name in ("zip.pth", "legacy.pth", "kit.safetensors"):
        mapped = load_checkpoint(tmp_path / name)  # the default: memory-mapped where the format allows
        whole = load_checkpoint(tmp_path / name, mmap=False)
        assert sorted(mapped) == sorted(whole) == sorted(state), name
        for key, value in state.items():
            assert mapped[key].dtype == whole[key].dtype == value.dtype, (name, key)
            assert torch.equal(mapped[key], value) and torch.equal(whole[key], value), (name, key)
    maps = Path("/proc/self/maps")
    if maps.is_file():  # Linux: the zip file's pages back the tensors while they are alive
        mapped = load_checkpoint(tmp_path / "zip.pth")
        assert str(tmp_path / "zip.pth") in maps.read_text()
        whole = load_checkpoint(tmp_path / "legacy.pth", mmap=False)
        assert str(tmp_path / "legacy.pth") not in maps.read_text()
        del mapped, whole


# ---------------------------------------------------------------------------------------------------------
# the command line: animate --weights kit:<folder> with a corrupt export file


@pytest.mark.slow
@pytest.mark.parametrize(
    "broken", ["03_pose_guider_study/stage1_b/denoising_unet-7.pth", "03_pose_guider_study/stage1_b/vae"]
)
def test_animate_with_a_corrupt_kit_export_file_exits_2_with_one_line(tiny_kit_run, tmp_path, capsys, broken):
    from aniportrait_lib.animate import main as animate
    from aniportrait_lib.paths import DATA_SAMPLES

    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    target = run / broken
    target = _weights_file(target) if target.is_dir() else target
    target.write_bytes(random.Random(3).randbytes(target.stat().st_size))  # same size: the index still agrees
    audio = tmp_path / "speech.wav"
    sf.write(audio, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16_000)
    out = tmp_path / "out.mp4"
    code = animate(["--ref", str(DATA_SAMPLES / "portrait.png"), "--audio", str(audio), "--out", str(out),
                    "--weights", f"kit:{run}", "--steps", "1", "--threads", "1"])  # fmt: skip
    errors = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert errors.startswith(f"error: {target}: ") and "Traceback" not in errors, errors
    assert not any(advice in errors for advice in TORCH_ADVICE), errors
