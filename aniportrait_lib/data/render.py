"""Rendering one mini-corpus clip: speech → mouth, blinks and head pose → mesh → warped portrait.

Everything a clip's frames show is computed from its ground truth: the per-frame canonical mesh
(reference mesh + rig offsets) and the per-frame pose, projected with the official camera
(:func:`aniportrait_lib.landmarks.camera.project_points`). The renderer moves the portrait's pixels
with those projected landmarks, plus a ring of head points (hair, ears, neck follow the head) and
the fixed frame border (the background stays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from aniportrait_lib.data.face_rig import MOUTH_INNER_LOWER, MOUTH_INNER_UPPER, FaceRig
from aniportrait_lib.data.head_motion import HeadMotionConfig, blinks, nods, sway
from aniportrait_lib.data.speech import Speech
from aniportrait_lib.data.visemes import ArticulationConfig, mouth_curves
from aniportrait_lib.data.warp import darken_polygon, warp_image
from aniportrait_lib.landmarks.camera import project_points

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe face-mesh silhouette, in order around the face."""

HEAD_RING_SCALES = (1.35, 1.8)
"""The face oval scaled about the head centre: points that move rigidly with the head."""


@dataclass(frozen=True)
class Reference:
    """The portrait the corpus animates, with its landmarks at the render size."""

    image: np.ndarray
    """(S, S, 3) uint8 RGB."""
    lmks3d: np.ndarray
    """(468, 3) canonical mesh of the portrait (MediaPipe geometry pipeline)."""
    trans_mat: np.ndarray
    """(4, 4) canonical → camera matrix of the portrait."""


@dataclass(frozen=True)
class ClipTruth:
    """Ground truth of one clip; T frames at ``fps``."""

    offsets: np.ndarray  # (T, 468, 3) float32 mesh offsets from the reference mesh (cm)
    pose: np.ndarray  # (T, 6) float32 pose relative to the portrait (deg xyz, cm xyz)
    jaw: np.ndarray  # (T,) rig control
    spread: np.ndarray  # (T,) rig control
    blink: np.ndarray  # (T, 2) rig control (right, left)
    lmks2d: np.ndarray  # (T, 468, 2) float32 projected landmarks in pixels (x, y)


def _stress_onsets(speech: Speech) -> list[float]:
    return [p.start for p in speech.phonemes if p.phoneme.startswith("'")]


def clip_truth(
    speech: Speech,
    reference: Reference,
    rig: FaceRig,
    fps: float,
    rng: np.random.Generator,
    head: HeadMotionConfig,
    articulation: ArticulationConfig,
) -> ClipTruth:
    """Compute the driving signals of one clip from its speech (no pixels yet)."""
    jaw, spread = mouth_curves(speech.phonemes, speech.duration, fps, articulation)
    n = len(jaw)
    blink = blinks(n, fps, rng, head).astype(np.float32)
    pose = sway(n, fps, rng, head)
    pose[:, 0] += nods(n, fps, _stress_onsets(speech), head)
    offsets = rig.offsets(jaw, spread, blink)
    size = reference.image.shape[:2]
    lmks2d = project_points(reference.lmks3d[None] + offsets, reference.trans_mat, pose, size)
    return ClipTruth(offsets, pose.astype(np.float32), jaw, spread, blink, lmks2d.astype(np.float32))


def _head_ring(lmks3d: np.ndarray) -> np.ndarray:
    oval = lmks3d[list(FACE_OVAL)]
    centre = lmks3d.mean(axis=0)
    rings = [centre + (oval - centre) * np.array([s, s, 1.0]) for s in HEAD_RING_SCALES]
    return np.concatenate(rings)


def render_frames(reference: Reference, truth: ClipTruth) -> np.ndarray:
    """The clip's frames, ``(T, S, S, 3)`` uint8 RGB."""
    size = reference.image.shape[:2]
    ring = _head_ring(reference.lmks3d)
    ring_ref = project_points(ring[None], reference.trans_mat, np.zeros((1, 6)), size)[0]
    ring_t = project_points(np.repeat(ring[None], len(truth.pose), 0), reference.trans_mat, truth.pose, size)
    mesh_ref = project_points(reference.lmks3d[None], reference.trans_mat, np.zeros((1, 6)), size)[0]
    source = np.concatenate([mesh_ref, ring_ref])
    mouth = list(MOUTH_INNER_UPPER) + list(MOUTH_INNER_LOWER[::-1])
    frames = np.empty((len(truth.pose), *reference.image.shape), np.uint8)
    # scipy's point location calls BLAS on tiny matrices: extra BLAS threads only add start-up cost
    # (seconds on a busy machine), so the renderer runs BLAS single-threaded.
    with threadpool_limits(1, user_api="blas"):
        for t in range(len(truth.pose)):
            target = np.concatenate([truth.lmks2d[t], ring_t[t]])
            frame = warp_image(reference.image, source, target)
            strength = 0.55 * float(max(truth.jaw[t], 0.0))
            frames[t] = darken_polygon(frame, truth.lmks2d[t][mouth], strength)
    return frames
