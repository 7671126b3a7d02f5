"""Lip-sync metrics on the 468-vertex face mesh: lip vertex error and mouth-opening correlation.

* **Lip vertex error (LVE)**, as defined by MeshTalk (Richard et al. 2021) and used by FaceFormer:
  per frame, the largest L2 distance between a predicted and a ground-truth lip vertex; averaged
  over frames. Same unit as the mesh (the MediaPipe canonical mesh is roughly in centimetres).
* **Mouth-opening correlation**: the per-frame distance between the inner upper-lip midpoint
  (vertex 13) and the inner lower-lip midpoint (vertex 14), for prediction and ground truth, and
  the Pearson correlation of the two sequences (1 = the mouth opens and closes in sync).

Both take meshes (T, 468, 3) in the same space, e.g. ``ref_lmks3d + offsets`` from Audio2Mesh and
the ``lmks3d`` MediaPipe extracts from the real video frames. The lip vertices and the mouth opening
themselves are :mod:`aniportrait_lib.landmarks.mouth`'s.
"""

from __future__ import annotations

import numpy as np

from aniportrait_lib.landmarks.mouth import LIP_VERTICES, mouth_opening


def _check_meshes(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape or prediction.ndim != 3 or prediction.shape[1:] != (468, 3):
        raise ValueError(f"expected two (T, 468, 3) meshes, got {prediction.shape} and {target.shape}")
    if prediction.shape[0] == 0:
        raise ValueError("meshes have zero frames")
    return prediction, target


def lip_vertex_error(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean over frames of the max L2 error over the lip vertices (mesh units).

    The vertices are :data:`~aniportrait_lib.landmarks.mouth.LIP_VERTICES`.

    Args:
        prediction, target: (T, 468, 3) meshes in the same space.
    """
    prediction, target = _check_meshes(prediction, target)
    lips = list(LIP_VERTICES)
    distances = np.linalg.norm(prediction[:, lips] - target[:, lips], axis=-1)  # (T, 40)
    return float(distances.max(axis=1).mean())


def mouth_opening_correlation(prediction: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation of the predicted and true mouth opening over time, in [-1, 1].

    Returns NaN when either sequence is constant (the correlation is undefined, e.g. for an
    untrained Audio2Mesh whose zero-initialised head predicts no motion).

    Raises:
        ValueError: mismatched shapes or fewer than 2 frames.
    """
    prediction, target = _check_meshes(prediction, target)
    if prediction.shape[0] < 2:
        raise ValueError("mouth-opening correlation needs at least 2 frames")
    a, b = mouth_opening(prediction), mouth_opening(target)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator == 0:
        return float("nan")
    return float((a * b).sum() / denominator)
