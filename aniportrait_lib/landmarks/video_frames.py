"""Decode video frames on a background thread, so decoding and landmark detection overlap.

Reading itself is :mod:`aniportrait_lib.video_io`'s job; :class:`PrefetchingFrames` runs any frame
iterator on a worker thread with a bounded queue: PyAV decodes and MediaPipe detects with the GIL
released, so the two CPU cores work at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np

_DONE = object()


class PrefetchingFrames:
    """Iterate ``frames`` with up to ``depth`` items decoded ahead on a daemon thread.

    An exception raised by the source is re-raised in the consumer at the same position.
    Use as a context manager (or call :meth:`close`) to stop the worker early.
    """

    def __init__(self, frames: Iterable[np.ndarray], depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(iter(frames),), daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, frames: Iterator[np.ndarray]) -> None:
        try:
            for frame in frames:
                if not self._put(frame):
                    return
        except Exception as error:  # handed over to the consumer thread, re-raised there
            self._put(error)
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        """Ask the worker to stop and wait for it."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> PrefetchingFrames:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
