"""Atomic training checkpoints with exact resume (model, optimizer, scheduler, RNG states, step).

Any trainer of the kit (Audio2Lmk, Lmk2Video) uses the same four calls::

    save_training_state(folder, step, model=..., optimizer=..., scheduler=..., extra={...})
    path = latest_checkpoint(folder)             # None on a fresh run
    state = load_training_state(path, model=..., optimizer=..., scheduler=...)  # restores RNGs
    state.step, state.extra

Why each piece:

* **atomic**: a checkpoint is written to a temporary file in the same folder, flushed to disk and
  renamed over its final name (``os.replace`` is atomic on POSIX and Windows), so a run killed
  mid-write leaves the previous checkpoint intact, never a truncated file. The ``latest`` pointer
  is updated the same way, after the checkpoint itself;
* **exact resume**: optimizer moments, the scheduler position and the Python / NumPy / torch (CPU
  and CUDA) random states are saved, so dropout, SpecAugment masks and data order continue as if
  the run had never stopped;
* **safe loading**: everything is stored as tensors and plain Python values and read back with
  ``torch.load(weights_only=True)`` (:func:`~aniportrait_lib.weights.checkpoint_io.read_torch_file`: a
  truncated, corrupt or unsafe file, or one whose model does not fit, is one ``ValueError`` naming it).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aniportrait_lib.atomic import atomic_torch_save, atomic_write_bytes
from aniportrait_lib.weights.checkpoint_io import read_torch_file
from aniportrait_lib.weights.lmk2video_checkpoints import compare_state_dicts

from .sharding import load_model_state, load_optimizer_state

LATEST_FILE = "latest"
"""Name of the text file holding the file name of the newest complete checkpoint."""


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU + every CUDA device) random states, as weights_only-safe values."""
    # the legacy global generator is what third-party code draws from, so it is the one to save
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    keys = np_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (np_state["kind"], keys, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingState:
    """What :func:`load_training_state` returns besides restoring the objects in place."""

    step: int  # optimizer steps completed when the checkpoint was written
    path: Path  # the checkpoint file read
    extra: dict[str, Any] = field(default_factory=dict)  # trainer-specific values (config, epoch, ...)


def state_signature(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """A compact description of named tensors to tell models apart: a hash of the names, dtypes and
    shapes, and each tensor's sum and sum of squares (float64). See :func:`same_signature`.

    Trainers store it with their checkpoints for the models they keep fixed, so that a resume can tell
    whether those are still the models the checkpoint was trained against. Moments rather than a hash
    of the bytes: the same recipe rerun may differ in the last bits (thread count, kernel choice).
    """
    names = sorted(state)
    digest = hashlib.blake2b(digest_size=12)
    for name in names:
        digest.update(f"{name}|{state[name].dtype}|{tuple(state[name].shape)};".encode())
    moments = [
        torch.stack([t.sum(), t.square().sum()]) for t in (state[n].detach().cpu().double() for n in names)
    ]
    stacked = torch.stack(moments) if moments else torch.zeros(0, 2, dtype=torch.float64)
    return {"structure": digest.hexdigest(), "moments": stacked}


def same_signature(a: Mapping[str, Any], b: Mapping[str, Any], rtol: float = 1e-4) -> bool:
    """Whether two :func:`state_signature` values describe the same models, up to float noise: the same
    structure, and per tensor sums within ``rtol`` of its norm and sums of squares within ``rtol``."""
    if a["structure"] != b["structure"] or a["moments"].shape != b["moments"].shape:
        return False
    (sum_a, square_a), (sum_b, square_b) = a["moments"].unbind(-1), b["moments"].unbind(-1)
    return bool(
        torch.all((sum_a - sum_b).abs() <= rtol * square_b.sqrt() + 1e-30)
        and torch.all((square_a - square_b).abs() <= rtol * square_b + 1e-30)
    )


def checkpoint_name(step: int) -> str:
    """``checkpoint-00001200.pt``: zero-padded so that names sort by step."""
    return f"checkpoint-{step:08d}.pt"


def save_training_state(
    folder: str | Path,
    step: int,
    model: nn.Module | Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
    scheduler: Any | None = None,
    extra: Mapping[str, Any] | None = None,
    keep_last: int = 2,
) -> Path:
    """Write ``folder/checkpoint-<step>.pt`` atomically, point ``folder/latest`` at it, prune old ones.

    Args:
        model: its ``state_dict()`` is saved (unwrap DDP / accelerate wrappers first), or a state dict
            already gathered (:func:`~.sharding.full_model_state` of sharded networks).
        optimizer: likewise, the optimizer or its state dict (:func:`~.sharding.full_optimizer_state`).
        extra: small plain values (numbers, strings, lists, dicts, tensors) to restore with the state.
        keep_last: number of newest checkpoints kept (older ones are deleted after the new one exists).

    Returns:
        Path of the checkpoint written.
    """
    folder = Path(folder)
    payload = {
        "step": int(step),
        "model": _state_of(model),
        "optimizer": _state_of(optimizer),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": capture_rng_state(),
        "extra": dict(extra or {}),
    }
    path = folder / checkpoint_name(step)
    atomic_torch_save(payload, path)
    atomic_write_bytes(folder / LATEST_FILE, lambda file: file.write(path.name.encode()))
    for old in sorted(folder.glob("checkpoint-*.pt"))[:-keep_last] if keep_last > 0 else []:
        old.unlink()
    return path


def _state_of(holder: Any) -> dict[str, Any] | None:
    """A module's or optimizer's ``state_dict()``, a state dict already made, or None for None."""
    if holder is None or isinstance(holder, Mapping):
        return None if holder is None else dict(holder)
    return holder.state_dict()


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint named by ``folder/latest`` (else the highest-step file), or None if there is none."""
    folder = Path(folder)
    pointer = folder / LATEST_FILE
    if pointer.is_file():
        candidate = folder / pointer.read_text().strip()
        if candidate.is_file():
            return candidate
    found = sorted(folder.glob("checkpoint-*.pt"))
    return found[-1] if found else None


def load_training_state(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
    check: Callable[[Path, dict[str, Any]], None] | None = None,
) -> TrainingState:
    """Restore model / optimizer / scheduler (in place) and the RNG states from a checkpoint.

    Args:
        model: the module to fill; FSDP2-sharded ones too (every process calls this then, with the same
            file: each keeps its shards, :mod:`.sharding`).
        optimizer: the optimizer of ``model``'s parameters (accelerate's wrapper too); a sharded run's
            state and an unsharded run's load into either kind (:func:`~.sharding.load_optimizer_state`).
        check: called with the path and the checkpoint's ``extra`` before anything is restored; raise
            there to refuse the checkpoint.

    Raises:
        ValueError: naming the file: it is unreadable (missing, truncated, corrupt, pickled Python objects),
            not a checkpoint written by :func:`save_training_state`, or its model / optimizer / scheduler
            state does not fit the given objects; and whatever ``check`` raises (nothing is restored then).
    """
    path = Path(path)
    # read whole, not memory-mapped: the tensors are restored into live optimizer / RNG state
    payload = read_torch_file(path, what="training checkpoint", mmap=False)
    if not isinstance(payload, dict) or not {"step", "model", "rng"} <= set(payload):
        raise ValueError(f"{path}: not a training checkpoint (needs step, model, rng)")
    if check is not None:
        check(path, payload["extra"])
    report = compare_state_dicts(payload["model"], model.state_dict(), "model")
    if not report.ok:
        problems = str(report).removeprefix("model: ")
        raise ValueError(f"{path}: the saved model does not fit this model ({problems})")
    load_model_state(model, payload["model"])
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if target is None:
            continue
        if payload[name] is None:
            raise ValueError(f"{path}: holds no {name} state")
        try:
            if name == "optimizer":
                load_optimizer_state(model, target, payload[name])
            else:
                target.load_state_dict(payload[name])
        except (ValueError, KeyError, RuntimeError, TypeError) as error:
            raise ValueError(f"{path}: the saved {name} state does not fit this {name} ({error})") from error
    if restore_rng:
        restore_rng_state(payload["rng"])
    return TrainingState(step=payload["step"], path=path, extra=payload["extra"])
