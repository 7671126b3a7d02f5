"""From eSpeak phonemes to mouth-shape curves over time (the mini corpus's lip-sync ground truth).

Each phoneme gets a target mouth shape — ``jaw`` (how far the lower lip drops, signed: negative
closes the portrait's own parted lips) and ``spread`` (+1 wide "ee", −1 rounded "oo") — held from
its start to the next phoneme's start. A Gaussian blur of a few tens of milliseconds then blends
neighbours the way real articulation overlaps (coarticulation), and the curves are sampled at the
video frame times. The classes are coarse on purpose: they are a plausible, learnable mapping
from sound to shape, not phonetics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from aniportrait_lib.data.speech import PhonemeEvent

# (jaw, spread) per phoneme class; eSpeak English mnemonics, stress marks stripped.
_SILENCE = (-0.75, 0.0)
_CLASSES: dict[str, tuple[float, float]] = {
    # open vowels
    "a": (1.0, 0.15), "A": (1.0, 0.0), "aa": (1.0, 0.0), "a#": (0.8, 0.1), "aI": (0.9, 0.2),
    "aU": (0.9, -0.3), "V": (0.75, 0.0), "0": (0.8, -0.4), "O": (0.7, -0.6), "O:": (0.7, -0.6),
    "OI": (0.7, -0.5),
    # mid vowels
    "E": (0.55, 0.45), "e": (0.5, 0.5), "eI": (0.5, 0.55), "e@": (0.55, 0.3), "3": (0.35, 0.0),
    "3:": (0.35, 0.0), "@": (0.25, 0.0), "@L": (0.2, 0.0), "@2": (0.25, 0.0), "@5": (0.25, 0.0),
    "oU": (0.5, -0.7), "o@": (0.55, -0.5),
    # close vowels
    "i": (0.1, 0.85), "i:": (0.1, 0.9), "I": (0.15, 0.75), "I2": (0.15, 0.7), "i@": (0.2, 0.6),
    "u": (0.15, -0.9), "u:": (0.15, -0.95), "U": (0.2, -0.8), "U@": (0.25, -0.7),
    # lips together / lip to teeth
    "p": (-0.95, 0.0), "b": (-0.95, 0.0), "m": (-0.95, 0.0), "f": (-0.6, 0.1), "v": (-0.6, 0.1),
    # rounded and spread approximants
    "w": (-0.3, -0.95), "W": (-0.3, -0.95), "r": (-0.1, -0.5), "j": (0.0, 0.6),
    # tongue consonants: slightly parted, sibilants spread
    "s": (-0.3, 0.5), "z": (-0.3, 0.5), "S": (-0.2, -0.3), "Z": (-0.2, -0.3), "tS": (-0.2, -0.3),
    "dZ": (-0.2, -0.3), "T": (-0.1, 0.2), "D": (-0.1, 0.2), "t": (-0.2, 0.2), "d": (-0.2, 0.2),
    "n": (-0.25, 0.15), "l": (0.0, 0.1), "k": (0.05, 0.1), "g": (0.05, 0.1), "N": (0.0, 0.1),
    "h": (0.2, 0.0),
}  # fmt: skip


def phoneme_shape(phoneme: str) -> tuple[float, float]:
    """Target (jaw, spread) for one eSpeak phoneme mnemonic; unknown symbols fall back to their
    first letter's class, then to a neutral half-open shape; pauses (``_``) close the mouth."""
    core = phoneme.strip().lstrip("',%=")
    if not core or core.startswith("_"):
        return _SILENCE
    for candidate in (core, core.rstrip(":;"), core[:2], core[:1]):
        if candidate in _CLASSES:
            return _CLASSES[candidate]
    return (0.2, 0.0)


@dataclass(frozen=True)
class ArticulationConfig:
    """How phoneme targets become smooth curves."""

    coarticulation_ms: float = 35.0
    """Standard deviation of the Gaussian that blends neighbouring phoneme targets (ms)."""
    lead_ms: float = 20.0
    """Mouth shapes lead the sound slightly (lips move before the phoneme is heard)."""
    amplitude: float = 1.0
    """Global scale of ``jaw`` around the silence value (speaker's articulation strength)."""


def mouth_curves(
    phonemes: list[PhonemeEvent],
    duration: float,
    fps: float,
    config: ArticulationConfig = ArticulationConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``jaw`` and ``spread`` (each ``(T,)`` float32) for a clip of ``duration`` seconds.

    Frames are sampled at ``t = i / fps``, i = 0 … ceil(duration·fps) − 1 (the official 30 fps
    frame-count rule, spec §2.1). Before the first phoneme and after the last the mouth rests.
    """
    n_frames = int(np.ceil(duration * fps))
    step_ms = 5.0  # fine timeline: 200 Hz
    grid = np.arange(0, duration * 1000 + step_ms, step_ms)
    jaw = np.full(grid.shape, _SILENCE[0])
    spread = np.full(grid.shape, _SILENCE[1])
    starts = [max(ev.start * 1000 - config.lead_ms, 0.0) for ev in phonemes]
    ends = starts[1:] + [grid[-1]]
    for ev, start, end in zip(phonemes, starts, ends, strict=True):
        mask = (grid >= start) & (grid < end)
        jaw[mask], spread[mask] = phoneme_shape(ev.phoneme)
    sigma = config.coarticulation_ms / step_ms
    jaw = gaussian_filter1d(jaw, sigma, mode="nearest")
    spread = gaussian_filter1d(spread, sigma, mode="nearest")
    jaw = _SILENCE[0] + config.amplitude * (jaw - _SILENCE[0])
    frame_ms = np.arange(n_frames) * 1000.0 / fps
    return (
        np.interp(frame_ms, grid, jaw).astype(np.float32),
        np.interp(frame_ms, grid, spread).astype(np.float32),
    )
