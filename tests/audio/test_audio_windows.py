"""Overlapping windows and cross-fades."""

from __future__ import annotations

import pytest
import torch

from aniportrait_lib.audio.windows import crossfade_weights, overlap_add, window_spans


def test_spans_cover_with_overlap():
    assert window_spans(10, 20, 5) == [(0, 10)]
    spans = window_spans(100, 30, 10)
    assert spans[0] == (0, 30) and spans[-1] == (70, 100)
    for (a0, b0), (a1, b1) in zip(spans, spans[1:], strict=False):
        assert b1 - a1 == 30 and b0 - a1 >= 10 and a1 > a0
    with pytest.raises(ValueError, match="window > overlap"):
        window_spans(10, 5, 5)


def test_weights_ramp_only_at_inner_edges():
    w = crossfade_weights((20, 50), 100, 10)
    assert w.shape == (30,) and 0 < w[0] < 0.1 and w[10:20].eq(1).all() and 0 < w[-1] < 0.1
    assert crossfade_weights((0, 30), 30, 10).eq(1).all()


def test_overlap_add_keeps_constants_and_blends_continuously():
    spans = window_spans(100, 30, 10)
    constant = overlap_add([torch.full((1, b - a, 2), 3.0) for a, b in spans], spans, 100, 10)
    torch.testing.assert_close(constant, torch.full((1, 100, 2), 3.0))
    # every window sees the same ramp signal: the blend is that signal exactly
    signal = torch.linspace(0, 1, 100)[None, :, None]
    blended = overlap_add([signal[:, a:b] for a, b in spans], spans, 100, 10)
    torch.testing.assert_close(blended, signal)
    # two windows that disagree by a constant: the blend moves between them in small steps
    pieces = [torch.full((1, b - a, 1), float(i % 2)) for i, (a, b) in enumerate(spans)]
    steps = overlap_add(pieces, spans, 100, 10).diff(dim=1).abs()
    assert steps.max() <= 0.11
