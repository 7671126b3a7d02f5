"""Overlapping windows with linear cross-fades: how the kit processes audio of any length.

A sequence of ``total`` frames is cut into spans of at most ``window`` frames; neighbouring spans
share at least ``overlap`` frames. Each span is processed on its own (bounded memory) and the
results are blended with weights that ramp linearly from ~0 to 1 over the first ``overlap`` frames
of a span and back down over its last ``overlap`` frames (not at the clip's own start / end).
Weights are normalised per frame, so wherever one span is alone its values are kept unchanged and
in an overlap the output moves continuously from one span's values to the next's: no seam.

    frames:  0 ............................................. total
    span 0:  [==========\\
    span 1:           /==========\\
    span 2:                     /=========]
"""

from __future__ import annotations

import torch


def window_spans(total: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Cover ``range(total)`` with spans ``[start, end)`` of length ``window`` overlapping by >= ``overlap``.

    The last span is shifted back so that it ends exactly at ``total`` (its overlap with the previous
    span may then be larger than ``overlap``).

    Raises:
        ValueError: ``window <= overlap`` or non-positive sizes.
    """
    if total <= 0:
        raise ValueError(f"total must be > 0 frames, got {total}")
    if window <= 0 or overlap < 0 or overlap >= window:
        raise ValueError(f"need window > overlap >= 0, got window={window}, overlap={overlap}")
    if total <= window:
        return [(0, total)]
    step = window - overlap
    spans = []
    start = 0
    while start + window < total:
        spans.append((start, start + window))
        start += step
    spans.append((total - window, total))
    return spans


def crossfade_weights(span: tuple[int, int], total: int, overlap: int) -> torch.Tensor:
    """(end - start,) blending weights of one span: linear ramps of ``overlap`` frames at inner edges."""
    start, end = span
    length = end - start
    weights = torch.ones(length, dtype=torch.float64)
    ramp_len = min(overlap, length)
    if ramp_len == 0:
        return weights
    ramp = (torch.arange(ramp_len, dtype=torch.float64) + 0.5) / ramp_len  # (0, 1), never exactly 0
    if start > 0:
        weights[:ramp_len] = torch.minimum(weights[:ramp_len], ramp)
    if end < total:
        weights[length - ramp_len :] = torch.minimum(weights[length - ramp_len :], ramp.flip(0))
    return weights


def overlap_add(
    pieces: list[torch.Tensor], spans: list[tuple[int, int]], total: int, overlap: int
) -> torch.Tensor:
    """Blend per-span results into one sequence.

    Args:
        pieces: per span a tensor (B, end - start, ...) (time on dim 1).
        spans: the spans from :func:`window_spans`.
        total: frames of the output.
        overlap: ramp length used by :func:`crossfade_weights`.

    Returns:
        (B, total, ...) tensor in the dtype of ``pieces[0]``.
    """
    if len(pieces) != len(spans):
        raise ValueError(f"{len(pieces)} pieces for {len(spans)} spans")
    first = pieces[0]
    out = torch.zeros((first.shape[0], total, *first.shape[2:]), dtype=torch.float64, device=first.device)
    norm = torch.zeros(total, dtype=torch.float64, device=first.device)
    for piece, span in zip(pieces, spans, strict=True):
        weights = crossfade_weights(span, total, overlap).to(first.device)
        shape = (1, -1) + (1,) * (piece.dim() - 2)
        out[:, span[0] : span[1]] += piece.double() * weights.view(shape)
        norm[span[0] : span[1]] += weights
    if bool((norm <= 0).any()):
        raise ValueError("spans do not cover every frame")
    shape = (1, -1) + (1,) * (first.dim() - 2)
    return (out / norm.view(shape)).to(first.dtype)
