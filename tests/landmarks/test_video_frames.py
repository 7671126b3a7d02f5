"""Background decoding and block-parallel processing helpers."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from aniportrait_lib.landmarks.parallel_blocks import iter_blocks, map_blocks_in_order
from aniportrait_lib.landmarks.video_frames import PrefetchingFrames, iter_video_rgb, probe_video


def test_iter_blocks_covers_everything_in_order():
    blocks = list(iter_blocks(iter(range(7)), 3))
    assert [(start, list(frames)) for start, frames in blocks] == [(0, [0, 1, 2]), (3, [3, 4, 5]), (6, [6])]
    with pytest.raises(ValueError):
        list(iter_blocks([], 0))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_map_blocks_keeps_order(workers):
    def job(start, frames):
        return [(start, f * 10) for f in frames]

    out = map_blocks_in_order(iter_blocks(range(10), 3), job, workers=workers)
    assert [value for _, value in out] == [f * 10 for f in range(10)]
    assert [start for start, _ in out] == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]


def test_map_blocks_propagates_errors():
    def job(start, frames):
        if start == 3:
            raise ValueError("bad block")
        return list(frames)

    with pytest.raises(ValueError, match="bad block"):
        map_blocks_in_order(iter_blocks(range(10), 3), job, workers=2)


def test_prefetching_reraises_source_errors():
    def frames():
        yield 1
        yield 2
        raise ValueError("decoder broke at frame 2")

    seen = []
    with pytest.raises(ValueError, match="frame 2"), PrefetchingFrames(frames(), depth=1) as prefetched:
        for item in prefetched:
            seen.append(item)
    assert seen == [1, 2]


def test_decode_written_video(tmp_path):
    frames = np.zeros((5, 64, 96, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    path = tmp_path / "ramp.mp4"
    iio.imwrite(path, frames, fps=12, codec="libx264", macro_block_size=16)
    info = probe_video(path)
    assert info.size == (96, 64) and info.fps == pytest.approx(12)
    decoded = np.stack(list(iter_video_rgb(path)))
    assert decoded.shape == (5, 64, 96, 3)
    assert np.abs(decoded[:, 32, 48, 0].astype(int) - frames[:, 32, 48, 0]).max() < 12
