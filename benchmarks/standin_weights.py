"""A full-size stand-in of the official weights folder: random values in the real files' names, keys, shapes.

For tests and benchmarks that need the ``gpu`` profile's weights folder where the real weights cannot be had:
every file the kit reads is written where the official layout puts it (``python -m aniportrait_lib.weights
layout``), with the published file's tensor names, shapes and dtypes, and the public ``config.json`` of each
folder. The values are random (seeded per tensor name), except the fixed ones: sin/cos positional tables
(``*.pe``, identical in both attentions of a motion module, as the converter requires), BatchNorm statistics
(mean 0, variance 1, counters 0) and CLIP's ``position_ids``. Nothing it generates means anything.

Where each file's keys, shapes and dtypes come from:

* the six AniPortrait files (``audio2mesh.pt``, ``audio2pose.pt``, ``reference_unet.pth``,
  ``denoising_unet.pth``, ``motion_module.pth``, ``pose_guider.pth``): the kit's networks on the meta device
  in the official key format (:func:`~aniportrait_lib.weights.deep_check.expected_entries`), which equal
  ``shared/reference/manifests``; ``denoising_unet.pth`` holds the 2-D part only, as released (3.44 GB);
* ``mm_sd_v15_v2.ckpt``: its manifest, ``aniportrait_lib/weights/manifests/mm_sd_v15_v2.json``;
* ``stable-diffusion-v1-5/unet/``: diffusers' ``UNet2DConditionModel`` with the SD1.5 config;
* ``sd-vae-ft-mse/``: diffusers' ``AutoencoderKL``, with the public file's older attention names
  (``query`` / ``key`` / ``value`` / ``proj_attn``, which diffusers renames on load);
* ``image_encoder/``: ``CLIPVisionModelWithProjection`` + the ``position_ids`` older transformers saved;
* ``wav2vec2-base-960h/``: ``Wav2Vec2ForCTC`` (``wav2vec2.*`` and ``lm_head``) with torch 2.0's weight-norm
  names ``weight_g`` / ``weight_v``.

About 17.4 GB in float32 (the published dtype of all of them). Memory stays at a few hundred MB: a
``.safetensors`` file is streamed tensor by tensor; a ``torch.save`` file (``.pt``/``.pth``/``.ckpt``) is
first written without its data (``torch.serialization.skip_data``), then each tensor's bytes are written at
its record's offset. Each file appears atomically (temporary file, then rename). At the end the folder is
checked as ``python -m aniportrait_lib.weights check --deep OUT`` does, plus every written file's keys,
shapes and dtypes and a few tensors' values.

Usage::

    python benchmarks/standin_weights.py OUT                         # everything (~17 GB, a few minutes)
    python benchmarks/standin_weights.py OUT --only pose_guider.pth sd-vae-ft-mse --dtype float16
    python benchmarks/standin_weights.py OUT --skeleton              # right sizes, no data (sparse files)
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors import safe_open
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.serialization import skip_data
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Wav2Vec2Config, Wav2Vec2ForCTC

from aniportrait_lib.atomic import atomic_path
from aniportrait_lib.audio.encoder import wav2vec2_base_960h_config
from aniportrait_lib.models.image_models import CLIP_VIT_L14_CONFIG, SD_VAE_FT_MSE_CONFIG
from aniportrait_lib.models.unets import SD15_UNET_CONFIG, build_image_denoising_unet
from aniportrait_lib.weights.animatediff import animatediff_manifest
from aniportrait_lib.weights.audio_checkpoints import WEIGHT_NORM_RENAMES
from aniportrait_lib.weights.deep_check import Entry, deep_check, expected_entries, read_entries
from aniportrait_lib.weights.layout import COMPONENTS, check_weights, format_report

FLOAT_DTYPES = ("float32", "float16", "bfloat16")
_SAFETENSORS_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64"}
_VAE_ATTENTION = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}


# 1. What each file holds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One component of the layout: its weights file and the small JSON files beside it."""

    component: str  # layout key (``python -m aniportrait_lib.weights check`` column 2)
    weights: str  # path of the weights file inside the weights folder
    entries: Callable[[], dict[str, Entry]]  # key → (shape, dtype), built on the meta device
    configs: dict[str, dict] = field(default_factory=dict)  # path inside the folder → JSON content


def _entries(state: dict[str, torch.Tensor]) -> dict[str, Entry]:
    return {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()}


def vae_entries(config: dict = SD_VAE_FT_MSE_CONFIG) -> dict[str, Entry]:
    """``AutoencoderKL`` keys, with the mid-block attentions named as in the public (diffusers 0.4) file."""
    entries = {}
    for key, entry in _entries(AutoencoderKL(**config).state_dict()).items():
        if ".mid_block.attentions." in key:
            for new, old in _VAE_ATTENTION.items():
                key = key.replace(new, old)
        entries[key] = entry
    return entries


def image_encoder_entries(config: dict = CLIP_VIT_L14_CONFIG) -> dict[str, Entry]:
    """``CLIPVisionModelWithProjection`` keys plus ``position_ids`` (int64), as in the public file."""
    config = CLIPVisionConfig(**config)
    entries = _entries(CLIPVisionModelWithProjection(config).state_dict())
    positions = (config.image_size // config.patch_size) ** 2 + 1  # 257 = patches + class token
    entries["vision_model.embeddings.position_ids"] = ((1, positions), "int64")
    return entries


def wav2vec2_entries(config: Wav2Vec2Config | None = None) -> dict[str, Entry]:
    """``Wav2Vec2ForCTC`` keys with torch 2.0's weight-norm names, as in the public file."""
    entries = {}
    for key, entry in _entries(Wav2Vec2ForCTC(config or wav2vec2_base_960h_config()).state_dict()).items():
        for old, new in WEIGHT_NORM_RENAMES.items():
            key = key.replace(new, old)
        entries[key] = entry
    return entries


def _official(component: str) -> Callable[[], dict[str, Entry]]:
    return lambda: expected_entries(Path("."), SD15_UNET_CONFIG)[component]()


def _hf_config(config, architecture: str) -> dict:
    config.architectures = [architecture]
    return config.to_dict()


def parts() -> list[Part]:
    """Every file of the official layout the kit reads (FILM's optional TorchScript file aside)."""
    w2v = "wav2vec2-base-960h"
    return [
        Part("sd15_unet", "stable-diffusion-v1-5/unet/diffusion_pytorch_model.safetensors",
             lambda: _entries(build_image_denoising_unet(SD15_UNET_CONFIG).state_dict()),
             {"stable-diffusion-v1-5/unet/config.json": {
                 "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", **SD15_UNET_CONFIG}}),
        Part("vae", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors", vae_entries,
             {"sd-vae-ft-mse/config.json": {
                 "_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", **SD_VAE_FT_MSE_CONFIG}}),
        Part("image_encoder", "image_encoder/model.safetensors", image_encoder_entries,
             {"image_encoder/config.json": _hf_config(CLIPVisionConfig(**CLIP_VIT_L14_CONFIG),
                                                      "CLIPVisionModelWithProjection")}),
        Part("wav2vec2", f"{w2v}/model.safetensors", wav2vec2_entries,
             {f"{w2v}/config.json": _hf_config(wav2vec2_base_960h_config(), "Wav2Vec2ForCTC"),
              f"{w2v}/preprocessor_config.json": {  # facebook/wav2vec2-base-960h's
                  "do_normalize": True, "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
                  "return_attention_mask": False, "sampling_rate": 16000}}),
        *(Part(c.key, c.path, _official(c.key)) for c in COMPONENTS
          if c.key in ("audio2mesh", "audio2pose", "reference_unet", "denoising_unet", "motion_module",
                       "pose_guider")),
        Part("animatediff", "mm_sd_v15_v2.ckpt", animatediff_manifest),
    ]  # fmt: skip


def _names(part: Part) -> set[str]:
    folder = part.weights.rpartition("/")[0]
    return {part.component, part.weights, folder, folder.partition("/")[0]} - {""}


def select(names: list[str] | None) -> list[Part]:
    """The parts named by component, file or folder (``pose_guider.pth``, ``vae``, ``image_encoder``)."""
    every = parts()
    if not names:
        return every
    chosen: dict[str, Part] = {}
    for name in names:
        found = [p for p in every if name.rstrip("/") in _names(p)]
        if not found:
            known = ", ".join(p.weights.partition("/")[0] for p in every)
            raise ValueError(f"--only {name}: not a part of the layout (one of: {known})")
        chosen |= {p.component: p for p in found}
    return list(chosen.values())


# 2. Values --------------------------------------------------------------------------------------------


def sinusoid_table(frames: int, channels: int) -> torch.Tensor:
    """(1, frames, channels): sin on even channels, cos on odd, base 10000 (AnimateDiff, Audio2Pose's PPE)."""
    position = torch.arange(frames, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    table = torch.zeros(1, frames, channels)
    table[0, :, 0::2] = torch.sin(position * rate)
    table[0, :, 1::2] = torch.cos(position * rate)
    return table


def standin_tensor(key: str, shape: tuple[int, ...], dtype: str, seed: int = 0) -> torch.Tensor:
    """The stand-in value of one tensor: the same for the same key, shape, dtype and seed."""
    torch_dtype = getattr(torch, dtype)
    if not torch_dtype.is_floating_point:
        if key.endswith("position_ids"):
            return torch.arange(shape[-1]).expand(shape).to(torch_dtype).contiguous()
        return torch.zeros(shape, dtype=torch_dtype)  # BatchNorm's num_batches_tracked
    if key.endswith("running_var"):
        return torch.ones(shape, dtype=torch_dtype)
    if key.endswith("running_mean"):
        return torch.zeros(shape, dtype=torch_dtype)
    if key.endswith(".pe") and len(shape) == 3:
        return sinusoid_table(shape[1], shape[2]).to(torch_dtype)
    generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{key}".encode()))  # mt19937: 32-bit seeds
    return (0.02 * torch.randn(shape, generator=generator)).to(torch_dtype)


def _bytes(tensor: torch.Tensor):
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


# 3. Writers -------------------------------------------------------------------------------------------


def write_safetensors(path: Path, entries: dict[str, Entry], seed: int = 0, skeleton: bool = False) -> None:
    """Stream a ``.safetensors`` file: header, then each tensor's bytes (widest dtype first)."""
    size = {k: math.prod(shape) * getattr(torch, dtype).itemsize for k, (shape, dtype) in entries.items()}
    order = sorted(entries, key=lambda k: (-getattr(torch, entries[k][1]).itemsize, k))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key in order:
        shape, dtype = entries[key]
        header[key] = {"dtype": _SAFETENSORS_CODES[dtype], "shape": list(shape),
                       "data_offsets": [offset, offset + size[key]]}  # fmt: skip
        offset += size[key]
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        if skeleton:
            f.truncate(8 + len(raw) + offset)
            return
        for key in order:
            f.write(_bytes(standin_tensor(key, *entries[key], seed=seed)))


def write_torch(path: Path, entries: dict[str, Entry], seed: int = 0, skeleton: bool = False) -> None:
    """A ``torch.save`` file (zip) of ``entries``: structure first, then each tensor's data in place."""
    with FakeTensorMode():
        fakes = {k: torch.empty(shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in entries.items()}
    with skip_data(materialize_fake_tensors=True):
        torch.save(fakes, path)  # data records reserved, not written; storage i = i-th tensor pickled
    if skeleton:
        return
    reader = torch._C.PyTorchFileReader(str(path))
    sizes = [math.prod(shape) * getattr(torch, dtype).itemsize for shape, dtype in entries.values()]
    if hasattr(reader, "get_record_size"):  # torch < 2.13 lacks it: then trust the sizes reserved
        sizes = [reader.get_record_size(f"data/{i}") for i in range(len(entries))]
    records = [(reader.get_record_offset(f"data/{i}"), size) for i, size in enumerate(sizes)]
    del reader
    with open(path, "r+b") as f:
        for (key, (shape, dtype)), (offset, size) in zip(entries.items(), records, strict=True):
            data = _bytes(standin_tensor(key, shape, dtype, seed))
            if data.nbytes != size:
                raise ValueError(f"{path}: record of {key} holds {size} bytes, the tensor {data.nbytes}")
            f.seek(offset)
            f.write(data)


def cast(entries: dict[str, Entry], dtype: str) -> dict[str, Entry]:
    """Floating tensors to ``dtype``; integer ones (counters, position ids) unchanged."""
    return {k: (shape, dtype if d in FLOAT_DTYPES else d) for k, (shape, d) in entries.items()}


@dataclass
class Written:
    part: Part
    path: Path
    entries: dict[str, Entry]
    seconds: float


def write_part(
    out: Path, part: Part, dtype: str = "float32", seed: int = 0, skeleton: bool = False
) -> Written:
    """Write one part's JSON files and its weights file (atomically) under ``out``."""
    start = time.perf_counter()
    for name, content in part.configs.items():
        with atomic_path(out / name) as tmp:
            tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    with torch.device("meta"):
        entries = cast(part.entries(), dtype)
    path = out / part.weights
    writer = write_safetensors if path.suffix == ".safetensors" else write_torch
    with atomic_path(path) as tmp:
        writer(tmp, entries, seed, skeleton)
    return Written(part, path, entries, time.perf_counter() - start)


# 4. Checks --------------------------------------------------------------------------------------------


def check_written(written: Written, seed: int = 0, skeleton: bool = False) -> list[str]:
    """Problems with a written file: keys, shapes and dtypes as intended; first and last tensors' values."""
    found, meant = read_entries(written.path), written.entries
    if found != meant:
        wrong = sorted(set(found) ^ set(meant) | {k for k in found if found[k] != meant.get(k)})
        return [f"{written.path}: {len(wrong)} keys differ from what was meant, e.g. {wrong[:3]}"]
    if skeleton:
        return []
    keys = [next(iter(written.entries)), next(reversed(written.entries))]
    if written.path.suffix == ".safetensors":
        with safe_open(str(written.path), framework="pt") as f:
            values = {k: f.get_tensor(k) for k in keys}
    else:
        state = torch.load(written.path, map_location="cpu", weights_only=True, mmap=True)
        values = {k: state[k] for k in keys}
    return [f"{written.path}: {k} does not hold its stand-in values" for k in keys
            if not torch.equal(values[k], standin_tensor(k, *written.entries[k], seed=seed))]  # fmt: skip


def verify(out: Path, written: list[Written], seed: int = 0, skeleton: bool = False) -> bool:
    """Print ``weights check --deep OUT``'s report and the files' own checks; True when all written fit."""
    print(format_report(check_weights(out), out))
    print("\ndeep check (keys and shapes against the kit's networks; AnimateDiff's against its manifest):")
    results = deep_check(out)
    for result in results:
        print(result.describe())
    problems = [problem for w in written for problem in check_written(w, seed, skeleton)]
    present = {s.component.key for s in check_weights(out) if s.present}
    problems += [
        f"{w.part.component}: not reported present" for w in written if w.part.component not in present
    ]
    problems += [f"deep check: {r.component} does not fit" for r in results if not r.ok]
    print("\nwritten files: " + ("keys, shapes, dtypes and sample values as meant" if not problems else ""))
    for problem in problems:
        print(f"  {problem}")
    return not problems


# 5. Command line --------------------------------------------------------------------------------------


def write_standin(
    out: Path, only: list[str] | None = None, dtype: str = "float32", seed: int = 0, skeleton: bool = False
) -> list[Written]:
    """Write the chosen parts (default: all) under ``out``, printing one line per file."""
    written = []
    for part in select(only):
        item = write_part(out, part, dtype, seed, skeleton)
        gigabytes = item.path.stat().st_size / 1e9
        print(f"  {item.path.relative_to(out)!s:<62} {gigabytes:6.2f} GB  {item.seconds:6.1f} s", flush=True)
        written.append(item)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="weights folder to write (official layout)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="parts: file, folder or component names")
    parser.add_argument("--dtype", default="float32", choices=FLOAT_DTYPES, help="floating tensors' dtype")
    parser.add_argument("--seed", type=int, default=0, help="random values' seed (per tensor name)")
    parser.add_argument("--skeleton", action="store_true", help="no data: sparse files of the right size")
    parser.add_argument("--no-verify", action="store_true", help="skip the final checks")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"stand-in weights ({args.dtype}{', skeleton' if args.skeleton else ''}) → {args.out}")
    written = write_standin(args.out, args.only, args.dtype, args.seed, args.skeleton)
    seconds = time.perf_counter() - start
    total = sum(w.path.stat().st_size for w in written) / 1e9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"  {len(written)} files, {total:.2f} GB in {seconds:.0f} s; peak RSS {peak:.2f} GB\n")
    return 0 if args.no_verify or verify(args.out, written, args.seed, args.skeleton) else 1


if __name__ == "__main__":
    sys.exit(main())
