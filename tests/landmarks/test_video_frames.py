"""Background decoding and block-parallel processing helpers."""

from __future__ import annotations

import pytest

from aniportrait_lib.landmarks.parallel_blocks import iter_blocks, map_blocks_in_order
from aniportrait_lib.landmarks.video_frames import PrefetchingFrames


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
