"""LMD, landmark distance on the mouth: how far a generated video's lips are from the reference video's.

Protocol (the kit's):

1. MediaPipe landmarks (:class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`, per-frame IMAGE
   mode) of every frame of the generated and of the reference video, in pixels of the frame.
2. The 40 lip vertices :data:`~aniportrait_lib.landmarks.mouth.LIP_VERTICES` (MediaPipe ``FACEMESH_LIPS``,
   outer and inner rings).
3. Per frame, the mean Euclidean distance between corresponding lip vertices
   (:func:`~aniportrait_lib.evaluation.landmark_metrics.landmark_distance`); frames where either video has
   no face are left out; the first ``min(F_generated, F_reference)`` frames of each pair are compared.
4. LMD = the mean over all compared frames of all video pairs (pooled, so longer videos weigh more).

Compared with the papers: LMD as introduced by Chen et al. (2018, "Lip movements generation at a
glance") and reported by talking-head papers uses dlib's 68-point landmarks, mouth points 49–68
(20 points), usually on faces cropped and resized to a common size (sometimes after aligning the
landmarks, e.g. removing the mean position), and is often scaled to that crop. The kit uses MediaPipe's
40 lip vertices, no alignment and the raw frame's pixels, and requires both videos to have the same frame
size; numbers are in the same unit (pixels) but are not directly comparable with published LMD values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aniportrait_lib.evaluation.face_crops import check_video, own_extractor, video_landmarks_px
from aniportrait_lib.evaluation.landmark_metrics import landmark_distance
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.landmarks.mouth import LIP_VERTICES


def mouth_landmark_distance(generated_px: np.ndarray, reference_px: np.ndarray) -> np.ndarray:
    """Per-frame mean distance between the lip vertices of two landmark sequences.

    Args:
        generated_px, reference_px: (T, ≥468, 2) landmarks in pixels (MediaPipe order; NaN = no face).

    Returns:
        (T,) float64 pixels; NaN where either frame has no face.
    """
    generated_px, reference_px = np.asarray(generated_px), np.asarray(reference_px)
    if generated_px.shape != reference_px.shape or generated_px.ndim != 3 or generated_px.shape[1] < 468:
        raise ValueError(
            f"expected two (T, 468+, 2) landmark arrays of the same shape, got {generated_px.shape} "
            f"and {reference_px.shape}"
        )
    lips = list(LIP_VERTICES)
    return landmark_distance(generated_px[:, lips, :2], reference_px[:, lips, :2])


def lmd(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    extractor: LandmarkExtractor | None = None,
) -> float:
    """Mouth landmark distance (pixels) between generated videos and their reference videos (module protocol).

    Args:
        generated: videos, each (F, H, W, 3) uint8 RGB.
        reference: one reference video per generated video, same frame size as its partner.
        extractor: MediaPipe wrapper to use; None creates one and closes it afterwards.

    Returns:
        Mean lip-vertex distance in pixels over all frames compared (0 for identical videos).

    Raises:
        ValueError: unequal numbers of videos, different frame sizes, or no frame pair with a face in both
            (the message names the video pair).
    """
    if len(generated) != len(reference) or not generated:
        raise ValueError(
            f"lmd: need one reference per generated video, got {len(generated)} and {len(reference)}"
        )
    distances = []
    with own_extractor(extractor) as extract:
        for index, (gen, ref) in enumerate(zip(generated, reference, strict=True)):
            where = f"lmd video pair {index}"
            gen, ref = check_video(gen, f"{where} (generated)"), check_video(ref, f"{where} (reference)")
            if gen.shape[1:] != ref.shape[1:]:
                raise ValueError(f"{where}: frame sizes differ ({gen.shape[1:3]} vs {ref.shape[1:3]})")
            frames = min(len(gen), len(ref))
            gen_px, _ = video_landmarks_px(gen[:frames], extract, f"{where} (generated)")
            ref_px, _ = video_landmarks_px(ref[:frames], extract, f"{where} (reference)")
            per_frame = mouth_landmark_distance(gen_px, ref_px)
            if np.isnan(per_frame).all():
                raise ValueError(f"{where}: no frame has a face in both videos")
            distances.append(per_frame[~np.isnan(per_frame)])
    return float(np.concatenate(distances).mean())
