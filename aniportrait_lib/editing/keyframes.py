"""Keyframe tracks: a few (frame, value) keys → one value per frame.

Between two keys a track interpolates either **linearly** or **smoothly** with a cubic Hermite
curve; before its first key and after its last it **holds** the nearest key's value.

Smooth tangents follow the monotone scheme of Fritsch & Carlson (the one behind scipy's
``PchipInterpolator``): at an interior key the tangent is the weighted harmonic mean of the two
neighbouring slopes, and it is zero at the first and last key and wherever the curve turns
(a peak, a valley or a flat stretch). Hence the curve

* passes through every key, never overshoots between keys (a blink stays within 0–1),
* eases in and out (two keys give the "smoothstep" ``3s² − 2s³``),
* has a continuous first derivative everywhere, including where the holds start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Interpolation = Literal["linear", "smooth"]
INTERPOLATIONS: tuple[str, ...] = ("linear", "smooth")


@dataclass(frozen=True)
class Keyframe:
    """A value pinned at a frame (0-based index at the performance's fps)."""

    frame: int
    value: float


def _smooth_tangents(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Monotone Hermite tangents (K,) for keys at ``x`` (K,) with values ``y`` (K,)."""
    h = np.diff(x)
    slope = np.diff(y) / h
    tangents = np.zeros_like(y)
    for k in range(1, len(x) - 1):
        left, right = slope[k - 1], slope[k]
        if left * right <= 0:  # a turning point or a flat side: stop there
            continue
        w_left, w_right = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
        tangents[k] = (w_left + w_right) / (w_left / left + w_right / right)
    return tangents


def interpolate(
    key_frames: np.ndarray, key_values: np.ndarray, frames: np.ndarray, mode: Interpolation = "smooth"
) -> np.ndarray:
    """Evaluate keys at ``frames``.

    Args:
        key_frames: (K,) strictly increasing key positions (frames), K ≥ 1.
        key_values: (K,) values at the keys.
        frames: (T,) where to evaluate (frames; fractions allowed).
        mode: "linear" or "smooth" (monotone cubic Hermite, see the module docstring).

    Returns:
        (T,) float64; outside the keys the first / last value is held.
    """
    x = np.asarray(key_frames, dtype=np.float64)
    y = np.asarray(key_values, dtype=np.float64)
    t = np.asarray(frames, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"keys need matching non-empty (K,) frames and values, got {x.shape} and {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"key frames must be strictly increasing, got {x.tolist()}")
    if mode not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {mode!r}: use 'linear' or 'smooth'")
    if mode == "linear" or len(x) == 1:
        return np.interp(t, x, y)
    tangents = _smooth_tangents(x, y)
    clipped = np.clip(t, x[0], x[-1])
    k = np.clip(np.searchsorted(x, clipped, side="right") - 1, 0, len(x) - 2)
    h = x[k + 1] - x[k]
    s = (clipped - x[k]) / h
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * y[k] + h10 * h * tangents[k] + h01 * y[k + 1] + h11 * h * tangents[k + 1]


@dataclass(frozen=True)
class Track:
    """The keys of one control, sorted by frame, with how to interpolate between them."""

    keys: tuple[Keyframe, ...]
    interpolation: Interpolation = "smooth"

    def __post_init__(self) -> None:
        frames = [k.frame for k in self.keys]
        if not frames:
            raise ValueError("a track needs at least one keyframe")
        if frames != sorted(set(frames)):
            raise ValueError(f"keyframes must be sorted with distinct frames, got frames {frames}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}: use 'linear' or 'smooth'")

    @classmethod
    def from_pairs(cls, pairs: list[tuple[int, float]], interpolation: Interpolation = "smooth") -> Track:
        """A track from ``[(frame, value), …]`` in any order."""
        keys = tuple(Keyframe(int(f), float(v)) for f, v in sorted(pairs))
        return cls(keys, interpolation)

    def evaluate(self, frames: np.ndarray | int) -> np.ndarray:
        """Values at ``frames`` ((T,) indices, or an int T meaning ``0 … T−1``) → (T,) float64."""
        t = np.arange(frames) if np.ndim(frames) == 0 else np.asarray(frames)
        return interpolate(
            np.array([k.frame for k in self.keys]),
            np.array([k.value for k in self.keys]),
            t,
            self.interpolation,
        )

    def key_at(self, frame: int) -> Keyframe | None:
        """The key at ``frame``, if there is one."""
        return next((k for k in self.keys if k.frame == frame), None)

    def with_key(self, frame: int, value: float) -> Track:
        """A copy with a key set (added or replaced) at ``frame``."""
        if frame < 0:
            raise ValueError(f"keyframes sit at frames >= 0, got {frame}")
        pairs = [(k.frame, k.value) for k in self.keys if k.frame != frame] + [(int(frame), float(value))]
        return Track.from_pairs(pairs, self.interpolation)

    def without_key(self, frame: int) -> Track | None:
        """A copy without the key at ``frame`` (None when no key is left)."""
        keys = tuple(k for k in self.keys if k.frame != frame)
        return Track(keys, self.interpolation) if keys else None
