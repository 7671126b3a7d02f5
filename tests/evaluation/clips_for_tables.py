"""Tiny talking clips for the evaluation-table tests: the sample portrait at 64², its lower face squeezed
a little more in every frame (MediaPipe finds the face once enlarged), written with the kit's own writer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.video_io import write_video

SIZE, FRAMES = 64, 8


def talking_frames(n: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8: the portrait, its lower face squeezed a little more in every frame."""
    portrait = cv2.resize(load_portrait(), (size, size), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(n):
        frame = portrait.copy()
        lower = portrait[size // 2 :]
        stretched = cv2.resize(lower, (size, size // 2 + t % 4), interpolation=cv2.INTER_LINEAR)
        frame[size // 2 :] = stretched[: size - size // 2]
        frames.append(frame)
    return np.stack(frames)


def write_clip(path: Path, frames: np.ndarray, audio: bool = True) -> Path:
    """``frames`` as an H.264 mp4 at 30 fps, with a silent 16 kHz track of the same length if ``audio``."""
    sound = (np.zeros(int(len(frames) / 30 * 16_000), np.float32), 16_000) if audio else None
    return write_video(path, frames, 30.0, audio=sound)


def write_sets(root: Path) -> tuple[Path, Path]:
    """A reference folder of two clips (with sound) and a generated folder (``<stem>_gen.mp4``, silent, plus
    one stray file): ``(generated, reference)``."""
    frames = talking_frames()
    for stem in ("clipA", "clipB"):
        write_clip(root / "reference" / f"{stem}.mp4", frames)
        write_clip(root / "generated" / f"{stem}_gen.mp4", frames, audio=False)
    write_clip(root / "generated" / "unrelated.mp4", frames[:2], audio=False)
    return root / "generated", root / "reference"
