"""Official ``audio2mesh.pt`` / ``audio2pose.pt`` ⇄ the kit's Audio2Mesh / Audio2Pose.

The kit's modules use the official parameter names, so the only renaming is the weight norm of
wav2vec2's positional convolution, whose names depend on the torch version that saved the file:

    torch 2.0 (official requirements)       torch >= 2.1 (parametrizations API, the kit)
    ...pos_conv_embed.conv.weight_g    <->  ...pos_conv_embed.conv.parametrizations.weight.original0
    ...pos_conv_embed.conv.weight_v    <->  ...pos_conv_embed.conv.parametrizations.weight.original1

Loading rules (matching how the official scripts load, but strict about everything else):

* files are read with ``torch.load(weights_only=True)`` (no pickled code) or safetensors, memory-mapped
  (:mod:`.checkpoint_io`: one ``ValueError`` naming the file for any unreadable one);
* floating tensors are cast to the model's dtype (released files may be fp16);
* the official loader is ``strict=False`` after reading wav2vec2 from its HF folder, so a file may
  omit **all** ``audio_encoder.*`` keys: they then come from a local ``wav2vec2-base-960h`` folder,
  or the encoder stays random and a warning says so;
* any other missing key, any unexpected key or any shape mismatch raises a ``ValueError`` listing
  them and naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from aniportrait_lib.audio.audio2mesh import Audio2Mesh, Audio2MeshConfig
from aniportrait_lib.audio.audio2pose import Audio2Pose, Audio2PoseConfig
from aniportrait_lib.weights.checkpoint_io import load_checkpoint

ENCODER_PREFIX = "audio_encoder."
WEIGHT_NORM_RENAMES = {
    "pos_conv_embed.conv.weight_g": "pos_conv_embed.conv.parametrizations.weight.original0",
    "pos_conv_embed.conv.weight_v": "pos_conv_embed.conv.parametrizations.weight.original1",
}
"""Official torch-2.0 names → torch>=2.1 parametrization names (both mean weight = g · v / ‖v‖)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (:func:`~.checkpoint_io.load_checkpoint`: ``weights_only=True``,
    memory-mapped, or safetensors) onto the CPU.

    A ``{"state_dict": ...}`` wrapper and a DataParallel ``module.`` prefix are removed.

    Raises:
        ValueError: naming the file: missing, truncated, corrupt, pickled Python objects, or content that is
            not a dict of tensors.
    """
    state = load_checkpoint(path)
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def official_to_kit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official keys to the kit's (only the weight-norm names change; both spellings accepted)."""
    renamed = {}
    for key, value in state.items():
        for old, new in WEIGHT_NORM_RENAMES.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        renamed[key] = value
    return renamed


def kit_to_official(state: dict[str, torch.Tensor], weight_norm: str = "weight_g") -> dict[str, torch.Tensor]:
    """Kit keys → official format.

    Args:
        weight_norm: ``"weight_g"`` for the torch-2.0 names (the manifests, the released files) or
            ``"parametrizations"`` to keep the torch>=2.1 names (what the oracle files use).
    """
    if weight_norm not in ("weight_g", "parametrizations"):
        raise ValueError(f"weight_norm must be 'weight_g' or 'parametrizations', got {weight_norm!r}")
    if weight_norm == "parametrizations":
        return dict(state)
    renamed = {}
    for key, value in state.items():
        for old, new in WEIGHT_NORM_RENAMES.items():
            if key.endswith(new):
                key = key[: -len(new)] + old
        renamed[key] = value
    return renamed


def check_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, allow_missing_encoder: bool
):
    """Compare kit-format ``state`` with ``model``; raise a ``ValueError`` listing every problem.

    Returns:
        True when all ``audio_encoder.*`` keys are absent (and that was allowed).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    encoder_absent = allow_missing_encoder and not any(k.startswith(ENCODER_PREFIX) for k in state)
    if encoder_absent:
        missing = [k for k in missing if not k.startswith(ENCODER_PREFIX)]
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"{source}: checkpoint does not match {type(model).__name__}"
            f"\n  missing keys ({len(missing)}): {missing}"
            f"\n  unexpected keys ({len(unexpected)}): {unexpected}"
            f"\n  mis-shaped keys ({len(shapes)}): {shapes}"
        )
    return encoder_absent


def load_into(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str = "<state_dict>",
    encoder_from_folder: bool = False,
) -> nn.Module:
    """Load an official-format ``state`` into ``model`` (rename, check, cast to the model's dtype).

    Args:
        source: file name for error messages.
        encoder_from_folder: the model's encoder already holds real wav2vec2 weights, so a file
            without ``audio_encoder.*`` keys is complete; otherwise such a file leaves a random
            encoder and a warning is issued.
    """
    state = official_to_kit(state)
    encoder_absent = check_state_dict(model, state, source, allow_missing_encoder=True)
    if encoder_absent and not encoder_from_folder:
        warnings.warn(
            f"{source} has no audio_encoder.* weights and no wav2vec2-base-960h folder was given: "
            "the wav2vec2 encoder is randomly initialised",
            stacklevel=2,
        )
    reference = model.state_dict()
    cast = {k: v.to(reference[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(cast, strict=not encoder_absent)
    return model


def load_audio2mesh(
    path: str | Path, config: Audio2MeshConfig | None = None, wav2vec2_dir: str | Path | None = None
) -> Audio2Mesh:
    """Official ``audio2mesh.pt`` (or .safetensors) → :class:`Audio2Mesh` in eval mode (float32)."""
    model = Audio2Mesh(config, wav2vec2_dir=wav2vec2_dir, random_encoder_ok=True)
    load_into(model, read_state_dict(path), str(path), encoder_from_folder=wav2vec2_dir is not None)
    return model.eval()


def load_audio2pose(
    path: str | Path, config: Audio2PoseConfig | None = None, wav2vec2_dir: str | Path | None = None
) -> Audio2Pose:
    """Official ``audio2pose.pt`` (or .safetensors) → :class:`Audio2Pose` in eval mode (float32)."""
    model = Audio2Pose(config, wav2vec2_dir=wav2vec2_dir, random_encoder_ok=True)
    load_into(model, read_state_dict(path), str(path), encoder_from_folder=wav2vec2_dir is not None)
    return model.eval()


def export_official(model: nn.Module, path: str | Path, weight_norm: str = "weight_g") -> None:
    """Save ``model`` in the official key format (``torch.save`` of a plain tensor dict)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(kit_to_official(state, weight_norm), Path(path))
