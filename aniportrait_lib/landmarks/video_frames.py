"""Decode video frames on a background thread, so decoding and landmark detection overlap.

The kit's shared ``video_io.py`` is written elsewhere; until it lands, this module is the landmarks
stage's single way of reading videos (PyAV). :class:`PrefetchingFrames` runs any frame iterator on
a worker thread with a bounded queue: PyAV decodes and MediaPipe detects with the GIL released, so
the two CPU cores work at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts needed for timestamps: frames per second and (W, H) in pixels."""

    fps: float
    size: tuple[int, int]


def probe_video(path: str | Path) -> VideoInfo:
    """Frames per second and size of the first video stream; ``ValueError`` if unreadable."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(f"{path}: missing or empty video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(float(rate) if rate else 25.0, (stream.width, stream.height))
    except av.error.FFmpegError as error:
        raise ValueError(f"{path}: cannot open video: {error}") from error


def iter_video_rgb(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of the first video stream as (H, W, 3) uint8 RGB arrays.

    Raises ``ValueError`` naming the file and frame index if decoding fails.
    """
    index = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
                index += 1
    except av.error.FFmpegError as error:
        raise ValueError(f"{path}: decoding failed at frame {index}: {error}") from error


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
