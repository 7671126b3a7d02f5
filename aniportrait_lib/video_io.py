"""Reading and writing videos with PyAV (FFmpeg's libraries, bundled in the ``av`` wheel).

* :func:`probe_video` and :func:`read_frames` read any container FFmpeg knows, frame by frame
  (memory does not grow with the video's length).
* :class:`VideoWriter` streams frames into an H.264 MP4, optionally with an AAC audio track, and
  writes atomically: the file appears under its name only once it is complete, so a killed run
  never leaves a half-written video behind.

Frames are ``(H, W, 3)`` uint8 RGB arrays throughout the kit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from aniportrait_lib.atomic import atomic_path


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds."""

    path: Path
    fps: float
    """Average frame rate (frames per second)."""
    num_frames: int
    """Frame count from the container (may be an estimate for some formats)."""
    width: int
    height: int
    duration: float
    """Seconds."""
    audio_sample_rate: int | None = None
    """Hz of the first audio stream, or None when the file has no audio."""
    audio_duration: float | None = None
    """Seconds of the first audio stream, when the container says."""


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes)")
    try:
        return av.open(str(path))
    except av.FFmpegError as err:
        raise ValueError(f"{path} is not a readable video: {err}") from err


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header: frame rate, frame count, size, duration and audio stream."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        frames = stream.frames or int(round(duration * fps))
        audio_rate = audio_duration = None
        if container.streams.audio:
            audio = container.streams.audio[0]
            audio_rate = audio.rate
            if audio.duration:
                audio_duration = float(audio.duration * audio.time_base)
        return VideoInfo(path, fps, frames, stream.width, stream.height, duration, audio_rate, audio_duration)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video lazily: yields ``(H, W, 3)`` uint8 RGB frames in order.

    Raises ``ValueError`` naming the file (and the frame) if the file is unreadable or breaks off.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                index += 1
        except av.FFmpegError as err:
            raise ValueError(f"{path} is corrupt: decoding stopped at frame {index}: {err}") from err
        if index == 0:
            raise ValueError(f"{path} contains no decodable frame")


def read_frames_at(path: str | os.PathLike, indices: Iterable[int]) -> np.ndarray:
    """Decode some frames of a constant-frame-rate video: ``(N, H, W, 3)`` uint8 RGB, in ``indices`` order.

    Seeks to the key frame before the first wanted frame and decodes forward to the last one, so a
    sample from a long clip costs about one key-frame interval of decoding, not the whole clip. A frame's
    index is its timestamp × the stream's average rate (true of the kit's prepared ``frames.mp4``).

    Raises:
        ValueError: naming the file, when it is unreadable or some index is past its end.
    """
    path, wanted = Path(path), [int(i) for i in indices]
    if not wanted:
        raise ValueError(f"no frame indices given for {path}")
    if min(wanted) < 0:
        raise ValueError(f"{path}: negative frame index in {wanted}")
    first, last, found = min(wanted), max(wanted), {}
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps, base = float(stream.average_rate or stream.guessed_rate or 0), stream.time_base
        if fps <= 0 or base is None:
            raise ValueError(f"{path} has no usable frame rate for seeking")
        start = stream.start_time or 0
        try:
            container.seek(start + int(first / fps / base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                index = round(float((frame.pts - start) * base) * fps) if frame.pts is not None else -1
                if index in wanted and index not in found:
                    found[index] = frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
        except av.FFmpegError as err:
            raise ValueError(f"{path} is corrupt: decoding stopped near frame {first}: {err}") from err
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(f"{path} has no frame(s) {missing[:5]} (asked for frames {first}-{last})")
    return np.stack([found[i] for i in wanted])


class VideoWriter:
    """Stream RGB frames into an H.264 MP4 (``yuv420p``, playable everywhere), atomically.

    Use as a context manager::

        with VideoWriter("out.mp4", fps=30, audio=(samples, 16000)) as writer:
            for frame in frames:
                writer.write(frame)

    Odd frame sizes are padded by one black row/column (H.264 with yuv420p needs even sizes).
    ``audio`` is ``(samples, sample_rate)`` with mono float samples in [-1, 1] (or ``(n, channels)``);
    it is encoded as AAC and trimmed to nothing longer than itself.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        audio: tuple[np.ndarray, int] | None = None,
        crf: int = 18,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.audio = audio
        self.crf = crf
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._atomic = None
        self._tmp: Path | None = None

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        return self

    def _start_stream(self, height: int, width: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(self.crf)}
        if self.audio is not None:  # every stream must exist before the first packet is muxed
            channels = 1 if np.ndim(self.audio[0]) == 1 else np.shape(self.audio[0])[1]
            layout = "mono" if channels == 1 else "stereo"
            self._audio_stream = self._container.add_stream("aac", rate=int(self.audio[1]), layout=layout)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame; all frames must have the size of the first."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}"
            )
        if self._stream is None:
            self._start_stream(*frame.shape[:2])
            self._size = frame.shape[:2]
        if frame.shape[:2] != self._size:
            raise ValueError(
                f"{self.path}: frame {self.frames_written} is {frame.shape[:2]}, expected {self._size}"
            )
        padded = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def write_all(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)

    def _write_audio(self) -> None:
        samples, rate = self.audio
        samples = np.asarray(samples, dtype=np.float32)
        samples = samples[:, None] if samples.ndim == 1 else samples
        stream = self._audio_stream
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T), format="fltp", layout=stream.layout.name
        )
        frame.sample_rate = int(rate)
        frame.pts, frame.time_base = 0, Fraction(1, int(rate))
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            self._container.mux(packet)

    def _finish(self) -> None:
        if self._stream is None:
            raise ValueError(f"{self.path}: no frame was written")
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        if self.audio is not None:
            self._write_audio()

    def __exit__(self, exc_type, exc, tb) -> None:
        error = exc
        try:
            if error is None:
                self._finish()
        except Exception as err:
            error = err
            raise
        finally:
            try:
                self._container.close()
            except Exception as err:  # a container that never got a stream may refuse to close
                error = error or err
            # success: the temporary file replaces the destination; failure: it is deleted
            self._atomic.__exit__(type(error) if error else None, error, tb)
            if error is not None and error is not exc and exc is None:
                raise error


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Write ``frames`` (``(H, W, 3)`` uint8 RGB) to an H.264 MP4 with optional audio; returns the path."""
    with VideoWriter(path, fps, audio) as writer:
        writer.write_all(frames)
    return Path(path)
