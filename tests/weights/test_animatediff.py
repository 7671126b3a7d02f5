"""AnimateDiff's ``mm_sd_v15_v2.ckpt``: manifest vs the kit's UNet, loading, errors, the weights check."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.serialization import skip_data

from aniportrait_lib.models.unets import build_denoising_unet
from aniportrait_lib.weights.__main__ import main as weights_cli
from aniportrait_lib.weights.animatediff import (
    ANIMATEDIFF_FILE,
    ANIMATEDIFF_MANIFEST,
    animatediff_manifest,
    describe_motion_file,
    load_animatediff_motion,
)
from aniportrait_lib.weights.deep_check import deep_check
from aniportrait_lib.weights.layout import check_weights
from aniportrait_lib.weights.lmk2video_checkpoints import official_to_kit_key

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)


def animatediff_layout(widths=(320, 640, 1280, 1280), layers_per_block=2, mid_block=True, frames=32):
    """Official key → shape of AnimateDiff motion modules, written out from the architecture (not the kit).

    v2 (the default): a module after each of a down block's ``layers_per_block`` layers and an up block's
    ``layers_per_block + 1``, one in the mid block; v1: ``mid_block=False, frames=24``.
    """
    modules = [(f"down_blocks.{i}", c, layers_per_block) for i, c in enumerate(widths)]
    modules += [(f"up_blocks.{i}", c, layers_per_block + 1) for i, c in enumerate(reversed(widths))]
    modules += [("mid_block", widths[-1], 1)] if mid_block else []
    layout = {}
    for block, c, count in modules:
        for j in range(count):
            t = f"{block}.motion_modules.{j}.temporal_transformer."
            b = f"{t}transformer_blocks.0."
            layout |= {f"{t}norm.weight": (c,), f"{t}norm.bias": (c,), f"{t}proj_in.weight": (c, c)}
            layout[f"{t}proj_in.bias"] = (c,)
            for a in (0, 1):
                q = f"{b}attention_blocks.{a}."
                layout |= {f"{q}to_{n}.weight": (c, c) for n in "qkv"}
                layout |= {f"{q}to_out.0.weight": (c, c), f"{q}to_out.0.bias": (c,)}
                layout[f"{q}pos_encoder.pe"] = (1, frames, c)
            layout |= {f"{b}norms.{n}.{p}": (c,) for n in (0, 1) for p in ("weight", "bias")}
            layout |= {f"{b}ff.net.0.proj.weight": (8 * c, c), f"{b}ff.net.0.proj.bias": (8 * c,)}
            layout |= {f"{b}ff.net.2.weight": (c, 4 * c), f"{b}ff.net.2.bias": (c,)}
            layout |= {f"{b}ff_norm.weight": (c,), f"{b}ff_norm.bias": (c,)}
            layout |= {f"{t}proj_out.weight": (c, c), f"{t}proj_out.bias": (c,)}
    return layout


def random_motion_file(path, layout, seed=0):
    """Random tensors in ``layout``; both attentions of a block share one positional table, as in the file."""
    generator = torch.Generator().manual_seed(seed)
    state = {k: 0.1 * torch.randn(shape, generator=generator) for k, shape in layout.items()}
    for key in state:
        if key.endswith("attention_blocks.1.pos_encoder.pe"):
            state[key] = state[key.replace("attention_blocks.1", "attention_blocks.0")].clone()
    torch.save(state, path)
    return state


def skeleton_file(path, entries):
    """A checkpoint with these keys, shapes and dtypes whose data is never written (a sparse file)."""
    with FakeTensorMode():
        state = {k: torch.empty(shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in entries.items()}
    with skip_data(materialize_fake_tensors=True):
        torch.save(state, path)


def test_manifest_is_the_v2_architecture_and_the_released_motion_module_layout(reference_dir):
    manifest = animatediff_manifest()
    header = json.loads(ANIMATEDIFF_MANIFEST.read_text())
    assert header["file"] == ANIMATEDIFF_FILE and header["num_keys"] == len(manifest) == 588
    assert header["num_elements"] == sum(math.prod(s) for s, _ in manifest.values()) == 454_417_600
    assert {dtype for _, dtype in manifest.values()} == {"float32"}
    assert {k: shape for k, (shape, _) in manifest.items()} == animatediff_layout()
    # AniPortrait's motion_module.pth (official classes, inference_v2.yaml): same keys, shapes and order
    released = json.loads((reference_dir / "manifests" / "motion_module.json").read_text())["keys"]
    assert [(k, tuple(s)) for k, (s, _) in released.items()] == [(k, s) for k, (s, _) in manifest.items()]
    # v1 (mm_sd_v15.ckpt): no mid-block module, 24-frame tables; 560 tensors
    assert len(animatediff_layout(mid_block=False, frames=24)) == 560


def test_manifest_converts_to_the_kit_unets_motion_modules_at_sd15_size():
    with torch.device("meta"):
        unet = build_denoising_unet()
    kit = {k: tuple(v.shape) for k, v in unet.state_dict().items() if "motion_modules" in k}
    converted = {official_to_kit_key(k): shape for k, (shape, _) in animatediff_manifest().items()}
    converted.pop(None)  # attention_blocks.1's copy of the positional table (checked equal on load)
    assert converted == kit


def test_a_tiny_file_in_the_layout_loads_and_changes_the_motion_output(micro_unet_config, tmp_path):
    torch.manual_seed(0)
    unet = build_denoising_unet(micro_unet_config).eval()
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "motion_modules" in name:
                param.zero_()  # zero output: the UNet is frame-by-frame, as at the start of stage 2
    sample = torch.randn(1, 4, 3, 8, 8)
    context = torch.randn(3, 1, micro_unet_config["cross_attention_dim"])

    def output():
        with torch.no_grad():
            return unet(sample, 10, encoder_hidden_states=context).sample

    before = output()
    layout = animatediff_layout(tuple(micro_unet_config["block_out_channels"]), layers_per_block=1)
    written = random_motion_file(tmp_path / ANIMATEDIFF_FILE, layout)
    load_animatediff_motion(unet, tmp_path / ANIMATEDIFF_FILE)
    after = output()
    assert (after - before).abs().max() > 1e-3
    state = unet.state_dict()
    for key, value in written.items():
        kit_key = official_to_kit_key(key)
        if kit_key is not None:
            assert torch.equal(state[kit_key], value), key


def test_wrong_files_raise_one_short_error_naming_the_file(micro_unet_config, tmp_path):
    unet = build_denoising_unet(micro_unet_config)
    widths = tuple(micro_unet_config["block_out_channels"])
    random_motion_file(tmp_path / "mm_sd_v15.ckpt", animatediff_layout(widths, 1, mid_block=False, frames=24))
    with pytest.raises(ValueError, match="not the motion modules") as error:
        load_animatediff_motion(unet, tmp_path / "mm_sd_v15.ckpt")
    message = str(error.value)
    assert "mm_sd_v15.ckpt" in message and "AnimateDiff v1 layout" in message
    assert "missing 27" in message and "mis-shaped" in message and len(message) < 1200
    wide = animatediff_layout((64, 128), layers_per_block=1)  # a wider UNet's modules
    random_motion_file(tmp_path / "wide.ckpt", wide)
    with pytest.raises(ValueError, match=r"wide.ckpt: .*has 189 .* 7 modules.*mis-shaped \d+ \(e.g."):
        load_animatediff_motion(unet, tmp_path / "wide.ckpt")
    torch.save({"conv_in.weight": torch.zeros(4, 4, 3, 3)}, tmp_path / "unet.ckpt")
    with pytest.raises(ValueError, match="unet.ckpt: .*no motion-module tensors"):
        load_animatediff_motion(unet, tmp_path / "unet.ckpt")
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.ckpt: not a PyTorch or safetensors checkpoint"):
        load_animatediff_motion(unet, tmp_path / "broken.ckpt")


def test_describe_motion_file_names_the_layouts():
    v2 = describe_motion_file(animatediff_layout())
    assert (
        v2.startswith("588 motion-module tensors in 21 modules, 32-frame") and "(AnimateDiff v2 layout)" in v2
    )
    assert "v3-like" in describe_motion_file(animatediff_layout(mid_block=False))


def test_weights_check_lists_it_as_optional_and_never_downloads(tmp_path, capsys):
    status = next(s for s in check_weights(tmp_path) if s.component.path == ANIMATEDIFF_FILE)
    assert status.component.optional and not status.present
    weights_cli(["check", str(tmp_path)])
    lines = [line for line in capsys.readouterr().out.splitlines() if ANIMATEDIFF_FILE in line]
    assert lines[0].split()[:2] == ["absent", "animatediff"] and "stage-2 training" in lines[0]
    assert lines[1].strip().startswith("optional, not present") and "guoyww/animatediff" in lines[1]


def test_deep_check_is_strict_on_keys_and_shapes_and_tolerant_of_float_dtypes(tmp_path):
    manifest = animatediff_manifest()
    path = tmp_path / ANIMATEDIFF_FILE
    skeleton_file(path, manifest)  # full size: 1.8 GB of holes, nothing written
    (result,) = deep_check(tmp_path)
    assert result.component == "animatediff" and result.ok and "float32, as published" in result.note
    skeleton_file(path, {k: (shape, "float16") for k, (shape, _) in manifest.items()})
    (result,) = deep_check(tmp_path)
    assert result.ok and "float16; the published file is float32" in result.note
    broken = dict(manifest)
    first, last = list(broken)[0], list(broken)[-1]
    del broken[first]
    broken[last] = ((7,), "float32")
    broken["extra.weight"] = ((1,), "float32")
    broken[list(broken)[5]] = (broken[list(broken)[5]][0], "int64")
    skeleton_file(path, broken)
    (result,) = deep_check(tmp_path)
    assert not result.ok
    assert result.missing == [first] and result.unexpected == ["extra.weight"]
    assert list(result.mismatched) == [last] and len(result.wrong_dtypes) == 1
    assert "MISMATCH" in result.describe() and "int64" in result.describe()


def test_studies_keep_the_old_names():
    from aniportrait_lib.studies import train_motion_module

    assert train_motion_module.load_animatediff_motion is load_animatediff_motion
    assert train_motion_module.ANIMATEDIFF_FILE == ANIMATEDIFF_FILE == "mm_sd_v15_v2.ckpt"
