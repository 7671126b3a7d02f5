"""One plain message for a local ``from_pretrained`` folder (diffusers / transformers) that cannot be loaded.

Used where the kit reads third-party folders: the VAE and CLIP image encoder (``models.image_models``) and
wav2vec2 (``audio.encoder``). The innermost exception says what happened (diffusers wraps it twice); it is
put in plain words, naming the weights file, and torch's advice to load with ``weights_only=False`` is never
passed on.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from safetensors import SafetensorError

__all__ = ["UNREADABLE_PRETRAINED", "unreadable_pretrained"]

UNREADABLE_PRETRAINED = (OSError, SafetensorError, pickle.UnpicklingError, RuntimeError, ValueError, EOFError)
"""What ``from_pretrained`` raises for an unreadable folder (diffusers wraps file errors in OSError)."""

_TRUNCATED = ("incomplete metadata", "header too small", "invalid header length", "EOF")


def unreadable_pretrained(folder: str | Path, what: str, error: BaseException) -> ValueError:
    """``ValueError("<weights file>: cannot load the <what>: <problem in plain words>")`` for ``error``."""
    folder = Path(folder)
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    text = str(error).removeprefix("Error while deserializing header: ").strip()
    first = text.splitlines()[0] if text else type(error).__name__
    files = sorted(p.name for p in folder.glob("*") if p.suffix in (".safetensors", ".bin"))
    where = folder / files[0] if len(files) == 1 else folder
    if "Unsupported global" in text:
        problem = "contains pickled Python objects that are not tensors; the kit loads only weights_only=True"
    elif any(sign in text for sign in _TRUNCATED):
        problem = "truncated (an interrupted download or copy?)"
    elif isinstance(error, SafetensorError | pickle.UnpicklingError):
        problem = f"corrupt, not a readable weights file ({first})"
    else:
        problem = type(error).__name__ if "weights_only" in first else first
    return ValueError(f"{where}: cannot load the {what}: {problem}")
