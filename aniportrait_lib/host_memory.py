"""The C allocator during generation: keep freed blocks for reuse, give them back afterwards (glibc only).

A denoising step allocates and frees the same large activation buffers hundreds of times. glibc serves
blocks above its mmap threshold (128 KiB, growing to at most 32 MiB) with fresh ``mmap`` calls and unmaps
them when freed, so every such buffer pays page faults and the kernel's zeroing again: on the mid-size
workload of ``benchmarks/pipeline.py`` a tenth to a sixth of the CPU time. :func:`keep_freed_memory` raises
the thresholds for the duration of a call, so freed buffers stay in the heap and are reused, and hands the
memory back (``malloc_trim``) when the call ends. The peak is the same; only its reuse changes.

Elsewhere (macOS, Windows, musl) both functions do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

__all__ = ["keep_freed_memory", "release_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's largest accepted mmap threshold on 64-bit
_DEFAULT_TRIM, _DEFAULT_MMAP = 128 * 2**10, 128 * 2**10
_lock = threading.Lock()
_depth = 0


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Return the C allocator's freed memory to the OS (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[None]:
    """Within the block, freed buffers up to 32 MiB stay in the heap for reuse; on exit they are released
    and glibc's default thresholds restored. Nested and concurrent uses share one setting."""
    global _depth
    libc = _libc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
                libc.malloc_trim(0)
