"""``weights check --deep``: do the official checkpoints in a weights folder fit the kit's networks?

For every AniPortrait file that is present, the expected keys and shapes come from the kit's own
networks built on the meta device (no memory for weights), translated to the official key format by
the converters; the file is opened memory-mapped (safetensors, or ``torch.load(weights_only=True,
mmap=True)``: :mod:`.checkpoint_io`, the loaders' own reader), so even the 3 GB denoiser is checked without
reading it into RAM. A mismatch is reported with the missing, unexpected and mis-shaped keys, the same lists
the loaders raise with, and with what the file looks like where that is easy to tell (a 2-D UNet checkpoint
in place of ``motion_module.pth``). A file the loaders could not read (truncated, corrupt, pickled Python
objects, not a state dict) is reported as UNREADABLE with the reason, never as "ok".

FILM's optional ``film_net_fp16.pt`` (TorchScript) is only checked to be a complete TorchScript archive.
AnimateDiff's optional ``mm_sd_v15_v2.ckpt`` is checked against its manifest
(:mod:`~aniportrait_lib.weights.animatediff`: the published file's keys and shapes): strict on keys and
shapes, tolerant of the floating dtype (float32 as published, or float16 / bfloat16, which load with a cast).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aniportrait_lib.audio.audio2mesh import Audio2Mesh, Audio2MeshConfig
from aniportrait_lib.audio.audio2pose import Audio2Pose, Audio2PoseConfig
from aniportrait_lib.models.pose_guider import MultiScalePoseGuider
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet
from aniportrait_lib.weights.animatediff import animatediff_manifest
from aniportrait_lib.weights.audio_checkpoints import kit_to_official
from aniportrait_lib.weights.checkpoint_io import (
    check_torchscript,
    checkpoint_format,
    load_checkpoint,
    read_safetensors_header,
)
from aniportrait_lib.weights.layout import COMPONENTS
from aniportrait_lib.weights.lmk2video_checkpoints import describe_keys, kit_to_official_unet

MOTION_KEY = "motion_module"
"""Substring of every motion-module key in the official denoiser (spec, manifests README)."""

FLOATS = ("float32", "float16", "bfloat16")
"""Dtypes a checkpoint's floating tensors may have (loaders cast them to the network's dtype)."""

Entry = tuple[tuple[int, ...], str]
"""(shape, dtype name) of one tensor, e.g. ``((320, 320), "float32")``."""

_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                       "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
                       "BOOL": "bool"}  # fmt: skip


@dataclass
class DeepCheck:
    """The verdict on one checkpoint file."""

    component: str
    path: Path
    ok: bool
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    wrong_dtypes: dict[str, str] = field(default_factory=dict)
    """Key → dtype of tensors no loader accepts (checked where a floating dtype is expected)."""
    note: str = ""
    unreadable: str = ""
    """Why the file could not be read (the loaders' message without the path); empty when it was read."""

    def describe(self, limit: int = 5) -> str:
        """One line (ok) or a short block listing what does not fit."""
        if self.ok:
            return f"  ok       {self.component:<15} {self.path.name}  {self.note}".rstrip()
        if self.unreadable:
            return f"  UNREADABLE {self.component:<13} {self.path.name}  {self.unreadable}"
        lines = [f"  MISMATCH {self.component:<15} {self.path.name}  {self.note}".rstrip()]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                more = " …" if len(keys) > limit else ""
                lines.append(f"           {len(keys)} {label}: {', '.join(keys[:limit])}{more}")
        for key, (got, want) in list(self.mismatched.items())[:limit]:
            lines.append(f"           shape of {key}: file {got}, kit {want}")
        for key, dtype in list(self.wrong_dtypes.items())[:limit]:
            lines.append(f"           dtype of {key}: {dtype}, expected one of {', '.join(FLOATS)}")
        return "\n".join(lines)


def read_entries(path: Path) -> dict[str, Entry]:
    """Key → (shape, dtype name) of a checkpoint, its data left on disk (a safetensors header, or a
    memory-mapped ``torch.load``).

    Raises:
        ValueError: naming ``path``: what the loaders refuse (:func:`~.checkpoint_io.load_checkpoint`).
    """
    if checkpoint_format(path) == "safetensors":
        header = read_safetensors_header(path)
        return {
            k: (tuple(e["shape"]), _SAFETENSORS_DTYPES.get(e["dtype"], e["dtype"])) for k, e in header.items()
        }
    return {k: _entry(v) for k, v in load_checkpoint(path, mmap=True).items()}


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key → shape of a checkpoint (:func:`read_entries` without the dtypes)."""
    return {k: shape for k, (shape, _) in read_entries(path).items()}


def _entry(tensor: torch.Tensor) -> Entry:
    return tuple(tensor.shape), str(tensor.dtype).removeprefix("torch.")


def _entries(state: dict[str, torch.Tensor]) -> dict[str, Entry]:
    return {k: _entry(v) for k, v in state.items()}


def _unet_config(folder: Path, override: dict | None) -> dict | None:
    if override is not None:
        return override
    config = folder / "stable-diffusion-v1-5" / "unet" / "config.json"
    return json.loads(config.read_text()) if config.is_file() else None


def expected_entries(folder: Path, unet_config: dict | None = None, audio_configs: dict | None = None):
    """Official-format key → (shape, dtype name) per component, from kit networks on the meta device.

    Returns a dict ``component → callable`` (built lazily: each network is made only if its file exists;
    call it under ``torch.device("meta")``). ``unet_config`` defaults to the folder's SD1.5
    ``unet/config.json``, else the kit's SD1.5 constant; ``audio_configs`` may give
    ``{"audio2mesh": Audio2MeshConfig, "audio2pose": Audio2PoseConfig}``. AnimateDiff's file comes from
    its manifest (SD1.5 only, whatever the folder's UNet).
    """
    cfg = _unet_config(folder, unet_config)
    audio_configs = audio_configs or {}

    def denoiser(motion: bool) -> dict[str, Entry]:
        state = kit_to_official_unet(build_denoising_unet(cfg).state_dict())
        return {k: _entry(v) for k, v in state.items() if (MOTION_KEY in k) == motion}

    def audio(model_cls, config_cls, name) -> dict[str, Entry]:
        model = model_cls(audio_configs.get(name, config_cls()), random_encoder_ok=True)
        return _entries(kit_to_official(model.state_dict()))

    return {
        "reference_unet": lambda: _entries(build_reference_unet(cfg).state_dict()),
        "denoising_unet": lambda: denoiser(motion=False),
        "motion_module": lambda: denoiser(motion=True),
        "pose_guider": lambda: _entries(MultiScalePoseGuider().state_dict()),
        "audio2mesh": lambda: audio(Audio2Mesh, Audio2MeshConfig, "audio2mesh"),
        "audio2pose": lambda: audio(Audio2Pose, Audio2PoseConfig, "audio2pose"),
        "animatediff": animatediff_manifest,
    }


def _judge(component: str, path: Path, entries: dict[str, Entry], wanted: dict[str, Entry]) -> DeepCheck:
    found = {k: shape for k, (shape, _) in entries.items()}
    expected = {k: shape for k, (shape, _) in wanted.items()}
    check = DeepCheck(component, path, ok=True)
    if component in ("audio2mesh", "audio2pose") and not any(k.startswith("audio_encoder.") for k in found):
        expected = {k: v for k, v in expected.items() if not k.startswith("audio_encoder.")}
        check.note = "(no audio_encoder.* keys: the encoder comes from wav2vec2-base-960h/)"
    if component == "denoising_unet" and any(MOTION_KEY in k for k in found):
        found = {k: v for k, v in found.items() if MOTION_KEY not in k}
        check.note = "(also holds motion-module keys, which would override motion_module.pth)"
    if component == "motion_module" and not all(MOTION_KEY in k for k in found):
        check.note = f"(looks like {describe_keys(found)})"
    if component in ("audio2mesh", "audio2pose"):  # accept either weight-norm spelling
        found = {k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"): v for k, v in found.items()}  # fmt: skip
    if component == "animatediff":
        check.note = _dtype_note(entries, wanted, check)
    check.missing = sorted(set(expected) - set(found))
    check.unexpected = sorted(set(found) - set(expected))
    check.mismatched = {
        k: (found[k], expected[k]) for k in sorted(set(found) & set(expected)) if found[k] != expected[k]
    }
    check.ok = not (check.missing or check.unexpected or check.mismatched or check.wrong_dtypes)
    return check


def _dtype_note(entries: dict[str, Entry], expected: dict[str, Entry], check: DeepCheck) -> str:
    """Record non-floating tensors where floating ones belong; say which dtype the file holds."""
    check.wrong_dtypes = {
        k: dtype for k, (_, dtype) in entries.items() if k in expected and expected[k][1] in FLOATS
        and dtype not in FLOATS
    }  # fmt: skip
    dtypes = sorted({dtype for _, dtype in entries.values()})
    published = sorted({dtype for _, dtype in expected.values()})
    if dtypes == published:
        return f"({', '.join(dtypes)}, as published)"
    return f"({', '.join(dtypes)}; the published file is {', '.join(published)})"


def deep_check(
    folder: str | Path, unet_config: dict | None = None, audio_configs: dict | None = None
) -> list[DeepCheck]:
    """Check every present AniPortrait checkpoint (and ``mm_sd_v15_v2.ckpt``) in ``folder``; absent files are
    skipped, unreadable ones fail (``ok=False`` with the reason in ``unreadable``)."""
    folder = Path(folder)
    builders: dict[str, Callable] = expected_entries(folder, unet_config, audio_configs)
    results = []
    for component in COMPONENTS:
        path = folder / component.path
        if component.key not in (*builders, "film") or not path.is_file():
            continue
        try:
            if component.key == "film":  # a TorchScript model: its archive is checked, not its graph
                check_torchscript(path)
                results.append(DeepCheck(component.key, path, ok=True, note="(TorchScript archive)"))
                continue
            found = read_entries(path)
        except ValueError as error:
            reason = str(error).removeprefix(f"{path}: ")
            results.append(DeepCheck(component.key, path, ok=False, unreadable=reason))
            continue
        with torch.device("meta"):
            expected = builders[component.key]()
        results.append(_judge(component.key, path, found, expected))
    return results
