"""Head-pose and blink trajectories for the mini corpus.

Pose follows the official 6-vector convention (spec §1.2: euler xyz in degrees, then translation
in canonical units), *relative to the portrait's own pose*: frame t is rendered with
``ref_trans_mat · E(pose[t])``, exactly as the official ``project_points`` composes them.

The motion is a slow random sway (a few sinusoids per axis) plus small nods at stressed word
onsets, so that a model listening to speech has something to learn about head motion, as
Audio2Pose does on real talking heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadMotionConfig:
    """Amplitudes (degrees / centimetres) and rhythm of the synthetic head motion."""

    sway_deg: tuple[float, float, float] = (3.0, 5.0, 2.0)
    """Peak sway about x (pitch), y (yaw), z (roll)."""
    sway_cm: tuple[float, float, float] = (0.25, 0.2, 0.3)
    """Peak translation along x, y, z."""
    sway_hz: tuple[float, float] = (0.12, 0.45)
    """Range of the sway frequencies."""
    nod_deg: float = 2.5
    """Pitch of a nod at a word onset (head dips: positive x rotation tilts the face down)."""
    nod_seconds: float = 0.35
    """Duration of one nod."""
    blink_interval_s: tuple[float, float] = (1.5, 4.5)
    """Range of the gaps between blinks."""
    blink_seconds: float = 0.22
    """Duration of one blink (close and open)."""


def sway(n_frames: int, fps: float, rng: np.random.Generator, config: HeadMotionConfig) -> np.ndarray:
    """Smooth random pose sway: ``(T, 6)`` float64 (degrees xyz, cm xyz)."""
    t = np.arange(n_frames) / fps
    amplitudes = np.array(config.sway_deg + config.sway_cm)
    pose = np.zeros((n_frames, 6))
    for axis in range(6):
        for share in (0.65, 0.35):
            freq = rng.uniform(*config.sway_hz)
            phase = rng.uniform(0, 2 * np.pi)
            pose[:, axis] += share * amplitudes[axis] * np.sin(2 * np.pi * freq * t + phase)
    return pose - pose[:1]  # start at the portrait's own pose


def nods(n_frames: int, fps: float, onsets: list[float], config: HeadMotionConfig) -> np.ndarray:
    """Pitch offsets ``(T,)`` in degrees: a smooth dip after every onset time (seconds)."""
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames)
    for onset in onsets:
        phase = (t - onset) / config.nod_seconds
        inside = (phase >= 0) & (phase <= 1)
        out[inside] += config.nod_deg * np.sin(np.pi * phase[inside]) ** 2
    return out


def blinks(n_frames: int, fps: float, rng: np.random.Generator, config: HeadMotionConfig) -> np.ndarray:
    """Eyelid closure ``(T, 2)`` in [0, 1] for (right, left) eye; both eyes blink together."""
    t = np.arange(n_frames) / fps
    closure = np.zeros(n_frames)
    start = rng.uniform(0.3, config.blink_interval_s[1])
    while start < t[-1] if n_frames else False:
        phase = (t - start) / config.blink_seconds
        inside = (phase >= 0) & (phase <= 1)
        closure[inside] = np.maximum(closure[inside], np.sin(np.pi * phase[inside]))
        start += config.blink_seconds + rng.uniform(*config.blink_interval_s)
    return np.stack([closure, closure], axis=1)
