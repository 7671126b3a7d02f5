"""Atomic file writes: a reader (or a run killed half-way) never sees a half-written file.

Everything the kit writes that another step reads back (metrics, manifests, checkpoints, videos)
goes through :func:`atomic_path`: the data is written to a temporary file in the same folder and
moved over the destination with :func:`os.replace`, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    ``suffix`` defaults to the destination's own (some writers, e.g. ffmpeg, choose the format by it).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=dest.suffix if suffix is None else suffix, dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the mode open() would
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Atomically write ``payload`` as indented, key-sorted JSON (diff-friendly in git)."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_bytes(path: str | os.PathLike, write: Callable) -> None:
    """Create ``path`` atomically: ``write(file_object)`` goes to a temp file renamed into place."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as file:
            write(file)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file behind."""
    import torch  # heavy: only the writers of weights and checkpoints need it

    atomic_write_bytes(path, lambda file: torch.save(obj, file))


def replace_folder(build: Callable[[Path], Any], destination: str | os.PathLike) -> Path:
    """Write a folder with ``build(tmp)`` beside ``destination``, then swap it in (no half-written folder)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    old = destination.with_name(f".{destination.name}.old")
    try:
        build(tmp)
        if destination.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
        os.replace(tmp, destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return destination
