"""Sliding context windows for long videos (spec §3.5 step 3).

The motion modules see at most ``context_frames`` frames at once (16 in training). A longer video is
denoised window by window at every step; each frame's prediction is the mean over the windows that
contain it. Two schedules:

* :func:`wrapping_windows` - the official ``uniform`` schedule as AniPortrait calls it (step index always
  0, stride 1, closed loop): windows start at 0, 12, 24, … (``context_frames − overlap``) and take 16
  consecutive indices **modulo F**, so the last window wraps around to the first frames (a closed loop;
  it links the video's end to its start).
* :func:`clipped_windows` - same starts, but the last window is shifted back to end at frame F−1, so no
  frame is ever mixed with the start of the video (better for clips that do not loop).

Both return ``list[list[int]]``; one window of all frames when ``F ≤ context_frames``.
"""

from __future__ import annotations

__all__ = ["clipped_windows", "context_windows", "wrapping_windows"]


def _check(num_frames: int, context_frames: int, overlap: int) -> None:
    if num_frames < 1 or context_frames < 1:
        raise ValueError(f"need num_frames ≥ 1 and context_frames ≥ 1; got {num_frames}, {context_frames}")
    if not 0 <= overlap < context_frames:
        raise ValueError(f"overlap must be in [0, context_frames); got {overlap} for {context_frames} frames")


def wrapping_windows(num_frames: int, context_frames: int = 16, overlap: int = 4) -> list[list[int]]:
    """Official closed-loop schedule. F=20 → ``[[0..15], [12..19, 0..7]]``."""
    _check(num_frames, context_frames, overlap)
    if num_frames <= context_frames:
        return [list(range(num_frames))]
    starts = range(0, num_frames, context_frames - overlap)
    return [[(s + i) % num_frames for i in range(context_frames)] for s in starts]


def clipped_windows(num_frames: int, context_frames: int = 16, overlap: int = 4) -> list[list[int]]:
    """Open schedule: the last window ends at the last frame. F=20 → ``[[0..15], [4..19]]``."""
    _check(num_frames, context_frames, overlap)
    if num_frames <= context_frames:
        return [list(range(num_frames))]
    windows = []
    for start in range(0, num_frames - overlap, context_frames - overlap):
        start = min(start, num_frames - context_frames)
        window = list(range(start, start + context_frames))
        if not windows or windows[-1] != window:
            windows.append(window)
    return windows


def context_windows(
    num_frames: int, context_frames: int = 16, overlap: int = 4, wrap_around: bool = True
) -> list[list[int]]:
    """:func:`wrapping_windows` (official) or :func:`clipped_windows`."""
    schedule = wrapping_windows if wrap_around else clipped_windows
    return schedule(num_frames, context_frames, overlap)
