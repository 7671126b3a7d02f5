"""Keep MediaPipe's native log lines (``W0000 … face_landmarker_graph.cc …``) out of notebooks.

MediaPipe's C++ graph writes informational warnings straight to file descriptor 2 whenever a
landmarker is created; environment switches such as ``GLOG_minloglevel`` do not reach it. While
a landmarker is being built, :func:`silence_native_stderr` points descriptor 2 at ``/dev/null``
and restores it afterwards. Python-level errors are unaffected: they are raised, not printed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None


def _enter() -> None:
    global _depth, _saved_fd
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved_fd = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _depth += 1


def _exit() -> None:
    global _depth, _saved_fd
    with _lock:
        _depth -= 1
        if _depth == 0 and _saved_fd is not None:
            os.dup2(_saved_fd, 2)
            os.close(_saved_fd)
            _saved_fd = None


@contextlib.contextmanager
def silence_native_stderr() -> Iterator[None]:
    """Silence descriptor 2 for the duration of the block (nestable, shared across threads)."""
    _enter()
    try:
        yield
    finally:
        _exit()
