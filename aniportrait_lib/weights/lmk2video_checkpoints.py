"""Official Lmk2Video checkpoints ↔ the kit's diffusers modules: the one place where keys are renamed.

Official files (``pretrained_weights/`` in the official README) and what they become:

=========================  ========================================================================
``reference_unet.pth``     :func:`~aniportrait_lib.models.unets.build_reference_unet` - same keys
``denoising_unet.pth``     :func:`~aniportrait_lib.models.unets.build_denoising_unet` - 2-D part, same keys
``motion_module.pth``      the same ``UNetMotionModel`` - motion keys renamed (table below)
``pose_guider.pth``        :class:`~aniportrait_lib.models.pose_guider.MultiScalePoseGuider` - same keys
=========================  ========================================================================

Motion-module renaming (official AnimateDiff v2 layout → diffusers ``UNetMotionModel``; FEASIBILITY.md):

=====================================  =====================================================
``.temporal_transformer.``             ``.``
``.attention_blocks.0.pos_encoder.pe``  ``.pos_embed.pe`` (one table per transformer block)
``.attention_blocks.1.pos_encoder.pe``  dropped - checked to equal block 0's table
``.attention_blocks.0.`` / ``.1.``     ``.attn1.`` / ``.attn2.``
``.norms.0.`` / ``.norms.1.``          ``.norm1.`` / ``.norm2.``
``.ff_norm.``                          ``.norm3.``
=====================================  =====================================================

:func:`kit_to_official_unet` inverts this (duplicating the table) for round trips.

Files are read with :func:`load_checkpoint` (defined in :mod:`.checkpoint_io`, the kit's one safe reader, and
importable from here). A file in the wrong place gets a short answer: :func:`check_motion_modules` names
the motion-module keys a file lacks and what it looks like instead (:func:`describe_keys`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .checkpoint_io import load_checkpoint

__all__ = [
    "MOTION",
    "LoadReport",
    "check_motion_modules",
    "compare_state_dicts",
    "convert_official_folder",
    "describe_keys",
    "describe_motion_file",
    "export_kit_folder",
    "image_encoder_to_kit",
    "kit_to_official_unet",
    "load_checkpoint",
    "load_into",
    "load_official_denoising_unet",
    "official_to_kit_key",
    "official_to_kit_unet",
]

StateDict = dict[str, torch.Tensor]

MOTION = "motion_modules"
"""Substring of every motion-module key, official and kit (``down_blocks.0.motion_modules.0. …``)."""
_MODULE = re.compile(r"^(.*?\.motion_modules\.\d+)\.")
_UNET_PREFIXES = ("conv_in.", "time_embedding.", "down_blocks.", "mid_block.", "up_blocks.", "conv_out.")

# (official pattern, kit replacement), applied in order to keys containing "motion_modules".
_MOTION_RENAMES = [
    (".temporal_transformer.", "."),
    (".attention_blocks.0.pos_encoder.pe", ".pos_embed.pe"),
    (".attention_blocks.0.", ".attn1."),
    (".attention_blocks.1.", ".attn2."),
    (".norms.0.", ".norm1."),
    (".norms.1.", ".norm2."),
    (".ff_norm.", ".norm3."),
]
_SECOND_TABLE = re.compile(r"\.attention_blocks\.1\.pos_encoder\.pe$")


def official_to_kit_key(key: str) -> str | None:
    """One official key → kit key; ``None`` for the duplicated positional table of ``attention_blocks.1``."""
    if "motion_modules" not in key:
        return key
    if _SECOND_TABLE.search(key):
        return None
    for old, new in _MOTION_RENAMES:
        key = key.replace(old, new)
    return key


def _kit_to_official_keys(key: str) -> list[str]:
    """One kit key → official key(s); ``pos_embed.pe`` becomes both attention blocks' tables."""
    if "motion_modules" not in key:
        return [key]
    prefix, rest = key.split(".transformer_blocks.", 1) if ".transformer_blocks." in key else (key, None)
    head, tail = prefix.rsplit(".motion_modules.", 1)
    index, _, inner = tail.partition(".")
    base = f"{head}.motion_modules.{index}.temporal_transformer."
    if rest is None:  # norm / proj_in / proj_out
        return [base + inner]
    rest = f"transformer_blocks.{rest}"
    if rest.endswith(".pos_embed.pe"):
        stem = rest[: -len("pos_embed.pe")]
        return [f"{base}{stem}attention_blocks.{i}.pos_encoder.pe" for i in (0, 1)]
    for old, new in reversed(_MOTION_RENAMES[2:]):
        rest = rest.replace(new, old)
    return [base + rest]


def official_to_kit_unet(state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> StateDict:
    """Rename an official (3-D or reference) UNet state dict to the kit's diffusers keys.

    Raises:
        ValueError: if a second positional table differs from the first (names ``source``).
    """
    converted: StateDict = {}
    for key, value in state_dict.items():
        new_key = official_to_kit_key(key)
        if new_key is None:
            first = key.replace(".attention_blocks.1.", ".attention_blocks.0.")
            if first in state_dict and not torch.equal(state_dict[first].float(), value.float()):
                raise ValueError(f"{source}: {key} differs from {first}; diffusers keeps one table per block")
            continue
        converted[new_key] = value
    return converted


def kit_to_official_unet(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Inverse of :func:`official_to_kit_unet` (the positional table is written for both attentions)."""
    return {old: value for key, value in state_dict.items() for old in _kit_to_official_keys(key)}


def image_encoder_to_kit(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """CLIP image-encoder weights from older transformers → current keys (drops ``position_ids``)."""
    return {k: v for k, v in state_dict.items() if not k.endswith("embeddings.position_ids")}


@dataclass
class LoadReport:
    """Differences between a state dict and a module (``mismatched``: key → (file shape, module shape))."""

    source: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        def listing(keys) -> str:
            keys = list(keys)
            return ", ".join(keys[:8]) + (f" … (+{len(keys) - 8})" if len(keys) > 8 else "")

        parts = []
        if self.missing:
            motion, count = sum(MOTION in key for key in self.missing), len(self.missing)
            of_them = f" ({motion} of them motion-module keys)" if 0 < motion < count else ""
            kind = " motion-module" if motion == count else ""
            parts.append(f"{count}{kind} missing{of_them} [{listing(self.missing)}]")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected [{listing(self.unexpected)}]")
        if self.mismatched:
            shapes = (f"{k}: file {a} vs model {b}" for k, (a, b) in self.mismatched.items())
            parts.append(f"{len(self.mismatched)} mis-shaped [{listing(shapes)}]")
        return f"{self.source}: " + ("; ".join(parts) if parts else "all keys match")


def _shape(value: torch.Tensor | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", value))


def compare_state_dicts(
    state_dict: Mapping[str, torch.Tensor | tuple[int, ...]],
    expected: Mapping[str, torch.Tensor | tuple[int, ...]],
    source: str,
) -> LoadReport:
    """Key and shape comparison of ``state_dict`` against ``expected`` (values: tensors or shapes)."""
    report = LoadReport(source)
    report.missing = [k for k in expected if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in expected]
    for key in state_dict.keys() & expected.keys():
        got, want = _shape(state_dict[key]), _shape(expected[key])
        if got != want:
            report.mismatched[key] = (got, want)
    return report


def load_into(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, strict: bool = True
) -> LoadReport:
    """Cast each tensor to the module's dtype for that key and load it.

    Args:
        source: file name used in messages.
        strict: raise on missing or unexpected keys (mis-shaped keys always raise).
    Raises:
        ValueError: naming ``source`` and listing missing / unexpected / mis-shaped keys.
    """
    target = module.state_dict()
    report = compare_state_dicts(state_dict, target, source)
    if report.mismatched or (strict and not report.ok):
        raise ValueError(f"cannot load {report}")
    cast = {k: v.to(target[k].dtype) for k, v in state_dict.items() if k in target}
    module.load_state_dict(cast, strict=False)
    return report


def describe_keys(state: Mapping[str, object]) -> str:
    """What a checkpoint looks like from its key names, in a few words (for error messages).

    E.g. ``"a 2-D UNet checkpoint (686 tensors, no motion_modules keys)"``.
    """
    keys = list(state)
    motion = sum(MOTION in key for key in keys)
    unet = any(key.startswith(_UNET_PREFIXES) for key in keys)
    if not keys:
        return "no tensors"
    if motion == len(keys):
        return f"motion modules only ({motion} tensors)"
    if motion:
        return f"a 3-D denoiser ({len(keys) - motion} 2-D UNet tensors, {motion} motion-module tensors)"
    if unet:
        return f"a 2-D UNet checkpoint ({len(keys)} tensors, no motion_modules keys)"
    if any(key.startswith("audio_encoder.") for key in keys):
        return f"an Audio2Mesh / Audio2Pose model ({len(keys)} tensors)"
    if any(key.startswith(("conv_layers", "final_proj")) for key in keys):
        return f"a pose guider ({len(keys)} tensors)"
    return f"{len(keys)} tensors, no motion-module ones (e.g. {keys[0]!r})"


def describe_motion_file(shapes: Mapping[str, torch.Tensor | tuple[int, ...]]) -> str:
    """One line on what motion-module layout a checkpoint holds (official or kit key names).

    E.g. ``"588 motion-module tensors in 21 modules, 32-frame positional table, mid-block module: yes
    (AnimateDiff v2 layout)"``; a file without motion modules says what it looks like instead.
    """
    shape = {k: _shape(v) for k, v in shapes.items() if MOTION in k}
    if not shape:
        return f"no motion-module tensors among its {len(shapes)}: {describe_keys(shapes)}"
    modules = {m.group(1) for k in shape if (m := _MODULE.match(k))}
    tables = {s[1] for k, s in shape.items() if k.endswith(".pe") and len(s) == 3}
    frames = "/".join(str(n) for n in sorted(tables)) or "no"
    mid = any(k.startswith("mid_block.") for k in shape)
    if tables == {32} and mid:
        kind = "AnimateDiff v2 layout"
    elif tables == {24} and not mid:
        kind = "AnimateDiff v1 layout, as mm_sd_v15.ckpt"
    elif tables == {32} and not mid:
        kind = "AnimateDiff v3-like layout, as v3_sd15_mm.ckpt"
    else:
        kind = "not a layout the official code uses"
    return (
        f"{len(shape)} motion-module tensors in {len(modules)} modules, {frames}-frame positional table, "
        f"mid-block module: {'yes' if mid else 'no'} ({kind})"
    )


def _examples(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', …' if len(keys) > limit else ''})"


def check_motion_modules(
    unet: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str | Path,
    supplied: Mapping[str, torch.Tensor] | None = None,
) -> StateDict:
    """The motion-module tensors of an official-layout file, renamed to kit keys and checked against ``unet``.

    Non-motion tensors in ``state`` are left out. Nothing is loaded: a file that does not fit raises before
    any weight of ``unet`` changes.

    Args:
        state: the file's tensors (official key names).
        source: the file, for the message.
        supplied: kit-key tensors that come from elsewhere (``denoising_unet.pth``'s own motion keys, which
            take precedence); the file need not hold those.
    Raises:
        ValueError: naming ``source``, when the file holds no motion modules or not this UNet's: what the
            UNet's motion modules are, what the file looks like, and the missing / unexpected / mis-shaped
            motion-module keys (counts and the first few).
    """
    found = {k: v for k, v in state.items() if MOTION in k}
    converted = official_to_kit_unet(found, Path(source).name)
    expected = {k: v for k, v in unet.state_dict().items() if MOTION in k and k not in (supplied or {})}
    report = compare_state_dicts(converted, expected, str(source))
    report.unexpected = [k for k in report.unexpected if k not in (supplied or {})]
    if expected and (not found or not report.ok):
        problems = [f"{label} {_examples(keys)}" for label, keys in
                    (("missing", report.missing), ("unexpected", report.unexpected)) if keys]  # fmt: skip
        if report.mismatched:
            key, (got, want) = next(iter(report.mismatched.items()))
            problems.append(f"mis-shaped {len(report.mismatched)} (e.g. {key}: file {got}, UNet {want})")
        raise ValueError(
            f"{source}: not the motion modules of this UNet (it has {describe_motion_file(expected)}); "
            f"the file has {describe_motion_file(state)}; " + "; ".join(problems)
        )
    return converted


def load_official_denoising_unet(
    unet: nn.Module,
    denoising_unet: Mapping[str, torch.Tensor],
    motion_module: Mapping[str, torch.Tensor] | None = None,
    sources: tuple[str, str] = ("denoising_unet.pth", "motion_module.pth"),
) -> LoadReport:
    """Load the two official denoiser files into a kit ``UNetMotionModel`` (strict over their union).

    The official scripts load the motion modules first and ``denoising_unet.pth`` afterwards, so motion
    keys present in both come from ``denoising_unet.pth``; the same precedence is kept here.

    Raises:
        ValueError: ``motion_module`` is not this UNet's motion modules (:func:`check_motion_modules`:
            names ``sources[1]`` and what it holds instead), or the union does not fit ``unet``.
    """
    spatial = official_to_kit_unet(denoising_unet, sources[0])
    if motion_module is not None:
        check_motion_modules(unet, motion_module, sources[1], supplied=spatial)
    merged = official_to_kit_unet(motion_module or {}, sources[1])
    merged.update(spatial)
    return load_into(unet, merged, " + ".join(sources))


def export_kit_folder(module: nn.Module, folder: str | Path, config: Mapping | object) -> Path:
    """Write ``diffusion_pytorch_model.safetensors`` + ``config.json`` (dict or dataclass) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(tensors, str(folder / "diffusion_pytorch_model.safetensors"))
    if not isinstance(config, Mapping):
        config = dict(vars(config))
    (folder / "config.json").write_text(json.dumps(config, indent=1, default=str))
    return folder


# (official file, kit sub-folder, converter); the denoiser's two files merge into one folder.
_OFFICIAL_FILES = {
    "reference_unet": ["reference_unet.pth"],
    "denoising_unet": ["motion_module.pth", "denoising_unet.pth"],  # later files take precedence
    "pose_guider": ["pose_guider.pth"],
}


def convert_official_folder(
    source: str | Path,
    destination: str | Path,
    configs: Mapping[str, Mapping],
    dtype: torch.dtype | None = None,
) -> dict[str, Path]:
    """Official ``pretrained_weights`` files → kit folders (safetensors + ``config.json``), key-level only.

    Nothing is instantiated, so this runs on a small machine. Each kit folder gets
    ``diffusion_pytorch_model.safetensors`` and the given config (``configs[name]``, e.g. the SD1.5 UNet
    dict or a guider config as a dict).

    Args:
        source: folder holding the official ``.pth`` files.
        destination: output root; writes ``reference_unet/``, ``denoising_unet/``, ``pose_guider/``.
        configs: per-folder config to save (keys as above).
        dtype: cast floating tensors (e.g. ``torch.float16``); ``None`` keeps the files' dtypes.
    """
    written = {}
    for name, files in _OFFICIAL_FILES.items():
        state: StateDict = {}
        for file in files:
            state.update(official_to_kit_unet(load_checkpoint(Path(source) / file), file))
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        folder = Path(destination) / name
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in state.items()}, str(folder / "diffusion_pytorch_model.safetensors")
        )
        (folder / "config.json").write_text(json.dumps(dict(configs[name]), indent=1, default=str))
        written[name] = folder
    return written
