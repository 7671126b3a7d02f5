"""Reading weight files safely: every checkpoint the kit reads goes through here.

Three formats are read, recognised by their first bytes (not by their suffix):

=====================  =============================================================================
zip (``torch.save``)   ``torch.load(weights_only=True, mmap=True)``: the tensors stay in the file's pages,
                       so a 3.4 GB ``denoising_unet.pth`` is not copied into RAM a second time
legacy ``torch.save``  ``torch.load(weights_only=True)`` (torch cannot memory-map this older format)
safetensors            ``safetensors.torch.load_file`` (memory-mapped by the library)
=====================  =============================================================================

Nothing is ever unpickled with ``weights_only=False``. Whatever goes wrong - a missing, empty, truncated or
corrupt file, one that is no checkpoint at all, one whose pickle would run code, one that holds something
other than named tensors - ends in ONE ``ValueError`` that names the file and says what is wrong in plain
words. torch's own advice (which suggests ``weights_only=False``) is never passed on; the original
exception stays chained for debugging.

Memory-mapped and ordinary reads give the same tensors, bit for bit; :func:`load_checkpoint` memory-maps by
default. Tensors read that way are copy-on-write views of the file: changing them never changes the file.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

__all__ = [
    "CheckpointFormat",
    "check_torchscript",
    "checkpoint_format",
    "load_checkpoint",
    "load_torchscript",
    "read_safetensors_header",
    "read_torch_file",
]

CheckpointFormat = Literal["zip", "legacy", "safetensors"]
"""``"zip"`` (``torch.save`` since torch 1.6), ``"legacy"`` (older ``torch.save``) or ``"safetensors"``."""

_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
"""``torch.serialization.MAGIC_NUMBER``, the first value a legacy ``torch.save`` file pickles."""
_HEAD = 64  # bytes read to recognise a format
_INTERRUPTED = "an interrupted download or copy?"
_PICKLED_CODE = (
    "contains pickled Python objects that are not tensors{names}; the kit loads checkpoints only with "
    "weights_only=True, which refuses them. Re-save the weights as a plain dict of tensors (or safetensors)"
)
# Errors torch.load raises for damaged files (its unpickler and zip reader are not specific about them)
_DAMAGED = (RuntimeError, EOFError, pickle.UnpicklingError, KeyError, IndexError, ValueError, TypeError,
            AttributeError, struct.error, UnicodeDecodeError, zipfile.BadZipFile)  # fmt: skip


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}")


def _head(path: Path) -> tuple[bytes, int]:
    """The first bytes of ``path`` and its size; a missing or unreadable file is a ValueError."""
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        with path.open("rb") as file:
            return file.read(_HEAD), path.stat().st_size
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror or error})") from error


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """8-byte little-endian header length, then a JSON object that fits in the file."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8


def _recognise(path: Path) -> tuple[CheckpointFormat | None, bytes]:
    """The format of ``path`` from its first bytes (None: none of the three) and those bytes."""
    head, size = _head(path)
    if size == 0:
        raise _fail(path, f"empty file (0 bytes): truncated ({_INTERRUPTED})")
    if head.startswith(_ZIP_MAGIC):
        return "zip", head
    if head[:1] == b"\x80" and _TORCH_MAGIC in head:
        return "legacy", head
    if _looks_like_safetensors(head, size):
        return "safetensors", head
    if path.suffix == ".safetensors" and head[8:9] == b"{":
        raise _fail(path, f"truncated: its safetensors header runs past the end of the file ({_INTERRUPTED})")
    if path.suffix == ".safetensors" and size < 8:
        raise _fail(path, f"truncated: {size} bytes, shorter than a safetensors header ({_INTERRUPTED})")
    if head.startswith(b"version https://git-lfs"):
        raise _fail(path, "a Git LFS pointer, not the file itself (fetch it with `git lfs pull`)")
    return None, head


def _unknown(head: bytes) -> str:
    """What an unrecognised file's first bytes say."""
    if head.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        return "it is an HTML page (a failed download?)"
    return f"it starts with {head[:12]!r}"


def checkpoint_format(path: str | Path) -> CheckpointFormat:
    """Which of the three formats ``path`` is in, from its first bytes (whatever its suffix).

    Raises:
        ValueError: missing, empty or unreadable file, a Git LFS pointer, or any other content
            ("not a PyTorch or safetensors checkpoint").
    """
    path = Path(path)
    file_format, head = _recognise(path)
    if file_format is None:
        raise _fail(path, f"not a PyTorch or safetensors checkpoint ({_unknown(head)})")
    return file_format


def _well_formed(entry: Any) -> bool:
    """A safetensors header entry: ``{"dtype": str, "shape": [int, ...], "data_offsets": [int, int]}``."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("dtype"), str)
        and isinstance(entry.get("shape"), list)
        and all(isinstance(n, int) for n in entry["shape"])
        and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
        and all(isinstance(n, int) for n in entry["data_offsets"])
    )


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """Key → ``{"dtype", "shape", "data_offsets"}`` of a safetensors file, checked against the file's size.

    Reads only the header (kilobytes), so it also suits a quick look at a multi-gigabyte file.

    Raises:
        ValueError: not a safetensors file, a header that is not valid JSON, or a file shorter than the
            tensors its header lists ("truncated").
    """
    path = Path(path)
    if checkpoint_format(path) != "safetensors":
        raise _fail(path, "not a safetensors file (it is a torch.save checkpoint)")
    size = path.stat().st_size
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(path, "corrupt safetensors file: its header is not valid JSON") from error
    if not isinstance(header, dict):
        raise _fail(path, "corrupt safetensors file: its header is not a JSON object")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    if not all(_well_formed(entry) for entry in entries.values()):
        raise _fail(path, "corrupt safetensors file: a header entry lacks its dtype, shape or offsets")
    end = max((entry["data_offsets"][1] for entry in entries.values()), default=0)
    if 8 + length + end > size:
        raise _fail(
            path,
            f"truncated: {size:,} bytes, its header lists tensors up to byte {8 + length + end:,} "
            f"({_INTERRUPTED})",
        )
    return entries


def _zip_members(path: Path) -> list[str]:
    """Names inside a zip-format file; a zip without its directory (at the end of the file) is truncated."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile as error:
        raise _fail(
            path, f"truncated: the zip archive's directory at the end of the file is missing ({_INTERRUPTED})"
        ) from error
    except (UnicodeDecodeError, ValueError, EOFError, struct.error, NotImplementedError) as error:
        raise _fail(path, "corrupt: the zip archive's directory is damaged") from error
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror or error})") from error


def _torch_detail(error: BaseException) -> str:
    """The first sentence of a torch error, without torch's advice (never ``weights_only=False``)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.split(". ")[0].rstrip(".")
    if re.search(r"weights_only|trust|add_safe_globals|internal miniz", text):
        return type(error).__name__
    return text


def _load_problem(error: BaseException, file_format: CheckpointFormat) -> str:
    """Plain words for an exception of ``torch.load`` on a file whose format was recognised."""
    text = str(error)
    refused = re.findall(r"GLOBAL ([\w.]+)", text)
    if refused or "Unsupported global" in text:
        names = f" ({', '.join(dict.fromkeys(refused))})" if refused else ""
        return _PICKLED_CODE.format(names=names)
    if isinstance(error, EOFError) or "unexpected EOF" in text or "Ran out of input" in text:
        return f"truncated: the data ends early ({_INTERRUPTED})"
    if "Weights only load failed" in text:
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        reason = detail.group(1).strip().rstrip(".") if detail else "its pickle could not be read"
        return f"corrupt: its pickled index is damaged ({reason})"
    if file_format == "legacy" and isinstance(error, IndexError | KeyError):
        return f"truncated or corrupt: its pickled data ends or breaks off ({_INTERRUPTED})"
    return f"corrupt: torch could not decode it ({_torch_detail(error)})"


def read_torch_file(path: str | Path, what: str = "checkpoint", mmap: bool = True) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with every failure as one ``ValueError``.

    Args:
        what: what the file should be, for messages ("training checkpoint").
        mmap: memory-map zip-format files (the default format since torch 1.6); legacy files are read whole.
    Returns:
        Whatever the file holds (tensors, containers of tensors and plain Python values).
    Raises:
        ValueError: naming ``path``: missing, empty, truncated, corrupt, not a ``torch.save`` file, a
            TorchScript model, or pickled objects that ``weights_only=True`` refuses.
    """
    path = Path(path)
    file_format = checkpoint_format(path)
    if file_format == "safetensors":
        raise _fail(path, f"a safetensors file, not a torch.save {what}")
    if file_format == "zip":
        members = _zip_members(path)
        if any(name.endswith("/constants.pkl") for name in members):
            raise _fail(path, f"a TorchScript model (torch.jit.save), not a {what}")
        if not any(name.endswith("data.pkl") for name in members):
            raise _fail(path, "not a PyTorch or safetensors checkpoint (a zip archive without data.pkl)")
    mapped = mmap and file_format == "zip"
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mapped)
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror or error})") from error
    except _DAMAGED as error:
        raise _fail(path, _load_problem(error, file_format)) from error


def _kind(value: Any) -> str:
    """``"a list"``, ``"an int"``, ``"a single tensor of shape (2, 3)"``."""
    if isinstance(value, torch.Tensor):
        return f"a single tensor of shape {tuple(value.shape)}"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def load_checkpoint(path: str | Path, mmap: bool = True) -> dict[str, torch.Tensor]:
    """A weights file (``.pth``, ``.pt``, ``.ckpt``, ``.bin``, ``.safetensors``) → name → tensor, on the CPU.

    A ``{"state_dict": {...}}`` wrapper (with other entries beside it) is unwrapped.

    Args:
        mmap: memory-map the tensors (zip-format ``torch.save`` files; safetensors always are). The values
            are the same either way; ``False`` reads every tensor into RAM.
    Raises:
        ValueError: one message naming ``path`` when it is missing, unreadable, truncated, corrupt, not a
            checkpoint, would need to unpickle Python objects, or does not hold a dict of named tensors.
    """
    path = Path(path)
    if checkpoint_format(path) == "safetensors":
        read_safetensors_header(path)  # says "truncated" where safetensors' own message is cryptic
        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as error:
            raise _fail(path, f"corrupt safetensors file ({error})") from error
        except OSError as error:
            raise _fail(path, f"cannot be read ({error.strerror or error})") from error
    state = read_torch_file(path, mmap=mmap)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise _fail(path, f"not a state dict (a dict of named tensors): it holds {_kind(state)}")
    if {"step", "model", "rng"} <= set(state):
        raise _fail(path, "a kit training checkpoint (step, model, optimizer, rng), not a weights file")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        examples = ", ".join(f"{key!r}: {_kind(state[key])}" for key in bad[:3])
        raise _fail(
            path,
            f"not a state dict (a dict of named tensors): {len(bad)} of its {len(state)} entries are not "
            f"tensors ({examples})",
        )
    if not state:
        raise _fail(path, "not a state dict: it holds no tensors")
    return dict(state)


def check_torchscript(path: str | Path) -> None:
    """Check that ``path`` looks like a complete TorchScript archive (``torch.jit.save``), without loading it.

    Raises:
        ValueError: naming ``path``: missing, empty, truncated, not a zip archive, or a ``torch.save``
            checkpoint (weights without the model's code).
    """
    path = Path(path)
    file_format, head = _recognise(path)
    if file_format is None:
        raise _fail(path, f"not a TorchScript model ({_unknown(head)})")
    if file_format != "zip":
        raise _fail(path, f"not a TorchScript model: a {file_format} checkpoint (weights only, no code)")
    if not any(name.endswith("/constants.pkl") for name in _zip_members(path)):
        raise _fail(path, "not a TorchScript model: a torch.save checkpoint (weights only, no code)")


def load_torchscript(path: str | Path, map_location: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """``torch.jit.load`` of a TorchScript model (e.g. FILM's ``film_net_fp16.pt``), its failures as one
    ``ValueError`` naming the file (truncated, corrupt, or a file that is not a TorchScript model)."""
    check_torchscript(path)
    try:
        return torch.jit.load(str(path), map_location=map_location)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise _fail(Path(path), f"corrupt TorchScript model ({_torch_detail(error)})") from error
