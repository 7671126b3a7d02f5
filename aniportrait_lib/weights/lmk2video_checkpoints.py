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
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "LoadReport",
    "compare_state_dicts",
    "convert_official_folder",
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


def load_checkpoint(path: str | Path) -> StateDict:
    """Read ``.pth``/``.pt``/``.ckpt`` (``torch.load(weights_only=True)``) or ``.safetensors`` → flat dict.

    Raises:
        ValueError: naming ``path`` when it is missing, unreadable (not a checkpoint, truncated, or one that
            would need to run pickled code) or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as error:
        raise ValueError(f"{path}: could not read checkpoint ({error})") from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return dict(state)


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

        parts = [f"{len(self.missing)} missing [{listing(self.missing)}]"] if self.missing else []
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


def load_official_denoising_unet(
    unet: nn.Module,
    denoising_unet: Mapping[str, torch.Tensor],
    motion_module: Mapping[str, torch.Tensor] | None = None,
    sources: tuple[str, str] = ("denoising_unet.pth", "motion_module.pth"),
) -> LoadReport:
    """Load the two official denoiser files into a kit ``UNetMotionModel`` (strict over their union).

    The official scripts load the motion modules first and ``denoising_unet.pth`` afterwards, so motion
    keys present in both come from ``denoising_unet.pth``; the same precedence is kept here.
    """
    merged = official_to_kit_unet(motion_module or {}, sources[1])
    merged.update(official_to_kit_unet(denoising_unet, sources[0]))
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
