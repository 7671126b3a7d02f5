"""How far extracted landmarks are from the truth (used on the mini corpus, where truth exists).

All functions take arrays in the kit's glossary: 2D landmarks in pixels ``(T, N, 2)``, meshes
``(T, 468, 3)`` in canonical centimetres, poses ``(T, 6)`` (euler xyz degrees + translation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aniportrait_lib.landmarks.pose import matrices_to_poses


def landmark_distance(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance per frame between two ``(T, N, 2)`` landmark sets → ``(T,)``.

    Frames where ``pred`` is NaN (no face found) give NaN.
    """
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(truth, np.float64), axis=-1).mean(axis=-1)


def relative_poses_to(reference_trans_mat: np.ndarray, trans_mats: np.ndarray) -> np.ndarray:
    """Poses of ``trans_mats`` (T, 4, 4) relative to a reference matrix: ``E(pose_t) = ref⁻¹ · M_t``.

    This inverts the official composition ``M_t = ref · E(pose_t)`` (spec §1.2) → ``(T, 6)``.
    """
    rel = np.linalg.inv(np.asarray(reference_trans_mat, np.float64))[None] @ np.asarray(
        trans_mats, np.float64
    )
    return matrices_to_poses(rel)


@dataclass(frozen=True)
class ExtractionError:
    """Extraction against ground truth, averaged over the frames where a face was found."""

    landmark_px: float
    """Mean 2D landmark distance (pixels of the analysed frames)."""
    landmark_px_p95: float
    """95th percentile over frames of the per-frame mean distance."""
    rotation_deg: float
    """Mean absolute error of the three euler angles (degrees)."""
    translation: float
    """Mean absolute translation error (canonical units, ~cm)."""
    mesh_cm: float
    """Mean vertex distance between extracted ``lmks3d`` and the true mesh (cm)."""
    found_fraction: float
    """Share of frames in which a face was found."""


def extraction_error(
    lmks2d: np.ndarray,
    lmks3d: np.ndarray,
    trans_mats: np.ndarray,
    found: np.ndarray,
    truth_lmks2d: np.ndarray,
    truth_mesh: np.ndarray,
    truth_pose: np.ndarray,
    reference_trans_mat: np.ndarray,
) -> ExtractionError:
    """Compare one clip's extraction (pixels, meshes, matrices) with its truth (:class:`ExtractionError`)."""
    found = np.asarray(found, bool)
    if not found.any():
        raise ValueError("no frame of the clip had a face: nothing to compare")
    per_frame = landmark_distance(lmks2d[found], truth_lmks2d[found])
    pose = relative_poses_to(reference_trans_mat, trans_mats[found])
    pose_err = np.abs(pose - truth_pose[found])
    mesh = np.linalg.norm(lmks3d[found] - truth_mesh[found], axis=-1).mean()
    return ExtractionError(
        landmark_px=float(per_frame.mean()),
        landmark_px_p95=float(np.percentile(per_frame, 95)),
        rotation_deg=float(pose_err[:, :3].mean()),
        translation=float(pose_err[:, 3:].mean()),
        mesh_cm=float(mesh),
        found_fraction=float(found.mean()),
    )


def evaluate_extraction_on_corpus(corpus, extractor, split: str = "heldout") -> dict[str, ExtractionError]:
    """Run ``extractor`` on every clip of one split of a mini corpus and compare with the truth.

    Args:
        corpus: a :class:`~aniportrait_lib.data.mini_corpus.MiniCorpus`.
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`.

    Returns:
        ``{clip_id: ExtractionError}``.
    """
    reference = corpus.reference()
    size = reference.image.shape[0]
    results = {}
    for clip in corpus.split(split):
        truth = corpus.truth(clip.clip_id)
        found = extractor.detect_video(corpus.video_path(clip.clip_id))
        results[clip.clip_id] = extraction_error(
            found.lmks[:, :468, :2] * size,
            found.lmks3d,
            found.trans_mat,
            found.found,
            truth.lmks2d,
            reference.lmks3d[None] + truth.offsets,
            truth.pose,
            reference.trans_mat,
        )
    return results
