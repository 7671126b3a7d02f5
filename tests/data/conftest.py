"""Tiny synthetic videos built from ``data_samples/portrait.png`` and their preparation, shared by
``test_prepare.py`` and ``test_prepare_shards.py``.

The session-scoped runs (:func:`prepared`, :func:`resume_reference`) are made once and only read by
the tests (copy an output before changing it). Sizes are tiny (256² sources, 128² crops, ≤ 50
frames) so that preparing them takes a few seconds on two busy cores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aniportrait_lib.data.prepare import PrepareConfig, prepare_dataset
from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.video_io import write_video

SOURCE_SIZE = 256
GREY = 128


def moving_face_offsets(n: int) -> np.ndarray:
    """(n, 2) pixel translations (dx, dy) of the face in frame t of the moving clip."""
    t = np.arange(n)
    return np.stack([2 * (t % 5), t % 4], axis=1).astype(np.float64)


@pytest.fixture(scope="session")
def talk_face_offsets() -> np.ndarray:
    """(24, 2) pixel translations (dx, dy) of the face in each frame of ``talk.mp4``."""
    return moving_face_offsets(24)


@pytest.fixture(scope="session")
def face_256() -> np.ndarray:
    """The sample portrait at 256², RGB uint8."""
    return cv2.resize(load_portrait(), (SOURCE_SIZE, SOURCE_SIZE), interpolation=cv2.INTER_AREA)


def shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` translated by (dx, dy) pixels, uncovered area grey (no face there)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    size = (image.shape[1], image.shape[0])
    return cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_CONSTANT, borderValue=(GREY,) * 3)


def grey_frame() -> np.ndarray:
    return np.full((SOURCE_SIZE, SOURCE_SIZE, 3), GREY, np.uint8)


def sine(seconds: float, hz: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def build_input_folder(root: Path, face: np.ndarray) -> Path:
    """A nested folder with every case the preparation must handle (see the file list below)."""
    moving = [shift(face, dx, dy) for dx, dy in moving_face_offsets(24)]  # talk_face_offsets
    write_video(root / "talk.mp4", moving, 25, audio=(sine(24 / 25), 16000))  # 25 fps + audio
    gap = [shift(face, 0, 0)] * 24
    gap[10:12] = [grey_frame()] * 2  # a 2-frame gap: interpolated
    write_video(root / "nested" / "gap.mp4", gap, 30)  # no audio
    leaves = [face] * 14 + [shift(face, 60 * (k + 1), 0) for k in range(8)] + [face] * 12
    leaves += [grey_frame()] * 8 + [face] * 4  # long gaps → parts; the last part is too short
    write_video(root / "nested" / "deeper" / "leaves.mp4", leaves, 30)
    write_video(root / "noface.mp4", [grey_frame()] * 10, 30)
    (root / "empty.mp4").write_bytes(b"")
    (root / "broken.mp4").write_text("this is a text file, not a video")
    (root / "notes.txt").write_text("ignored: not a video suffix")
    return root


@pytest.fixture(scope="session")
def small_config() -> PrepareConfig:
    """Tiny crops, short clips: the same code paths as the defaults at a fraction of the cost."""
    return PrepareConfig(image_size=128, min_frames=8, max_gap_frames=3, progress=False)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, face_256, small_config):
    """(input folder, output folder, summary) of one uninterrupted run (do not modify its output)."""
    root = tmp_path_factory.mktemp("prepare")
    source = build_input_folder(root / "videos", face_256)
    summary = prepare_dataset(source, root / "out", small_config)
    return source, root / "out", summary


@pytest.fixture(scope="session")
def resume_input(tmp_path_factory, face_256) -> Path:
    """Two 12-frame videos of a jiggling face: ``a.mp4`` (with audio) and ``b.mp4``."""
    root = tmp_path_factory.mktemp("resume_in")
    write_video(root / "a.mp4", [shift(face_256, t % 3, 0) for t in range(12)], 30, audio=(sine(0.4), 16000))
    write_video(root / "b.mp4", [shift(face_256, 0, t % 3) for t in range(12)], 30)
    return root


@pytest.fixture(scope="session")
def resume_reference(resume_input, tmp_path_factory, small_config) -> Path:
    """Output of one uninterrupted run on ``resume_input`` (do not modify: copy it first)."""
    out = tmp_path_factory.mktemp("resume_reference") / "out"
    prepare_dataset(resume_input, out, small_config)
    return out
