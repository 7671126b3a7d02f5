"""Process a stream of video frames in fixed-size blocks on several worker threads, in order.

MediaPipe's graphs and PyAV's decoder release the GIL, so threads give real parallelism on a
multi-core CPU. A video is cut into consecutive blocks of ``block_frames`` frames; each block is
an independent job (the landmark extractor starts a fresh tracker per block), so the result does
not depend on which worker ran which block. At most ``max_pending`` blocks are in flight, which
bounds memory for long videos.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

R = TypeVar("R")


def iter_blocks(frames: Iterable[np.ndarray], block_frames: int) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yield ``(first_index, frames)`` blocks of up to ``block_frames`` consecutive frames."""
    if block_frames < 1:
        raise ValueError(f"block_frames must be >= 1, got {block_frames}")
    block: list[np.ndarray] = []
    start = 0
    for index, frame in enumerate(frames):
        if not block:
            start = index
        block.append(frame)
        if len(block) == block_frames:
            yield start, block
            block = []
    if block:
        yield start, block


def map_blocks_in_order(
    blocks: Iterable[tuple[int, list[np.ndarray]]],
    job: Callable[[int, list[np.ndarray]], list[R]],
    workers: int = 2,
    max_pending: int | None = None,
) -> list[R]:
    """Run ``job(first_index, frames)`` on every block with ``workers`` threads; concatenate in order.

    Args:
        blocks: from :func:`iter_blocks` (may be a lazy stream, e.g. a decoding thread).
        job: returns one result per frame of its block; exceptions propagate to the caller.
        workers: number of threads (1 = run in the calling thread's order, still via one worker).
        max_pending: blocks submitted but not yet collected (default ``2 · workers``).
    """
    max_pending = max_pending or 2 * workers
    results: list[R] = []
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="landmarks") as pool:
        try:
            for start, frames in blocks:
                pending.append(pool.submit(job, start, frames))
                while len(pending) >= max_pending:
                    results.extend(pending.popleft().result())
            while pending:
                results.extend(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    return results
