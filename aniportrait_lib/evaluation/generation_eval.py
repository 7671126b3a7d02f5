"""Does a generated talking video move its mouth with the speech and follow the driving face? Measured on a
held-out mini-corpus utterance, where the truth (mesh, landmarks) is known.

MediaPipe re-extracts the face from every generated frame (enlarged first so that its shorter side is at
least ``upscale_to`` pixels: MediaPipe needs faces of a few hundred pixels). The video is scored over the
frames where a face was found, the baselines over every frame:

* ``mouth_corr`` - Pearson correlation of the mouth opening over time (distance of the inner-lip midpoints
  13 and 14 in MediaPipe's canonical metric mesh ``lmks3d``, i.e. with the head pose removed) between the
  generated video and the true mesh (1 = the mouth opens and closes with the truth);
* ``mouth_corr_envelope`` - baseline: the same correlation for the speech's RMS loudness envelope ("the
  mouth opens when the voice is loud"), notebook 02's loudness baseline. Notebook 02 maps the envelope to
  the mesh with a fitted affine map; a correlation does not change under an increasing affine map, so the
  envelope itself scores the same;
* ``landmark_px`` - mean 2D distance (pixels of the generated frames) between the re-extracted and the
  true landmarks;
* ``landmark_px_reference`` - baseline "reference unchanged": the same distance for the portrait itself
  shown in every frame (its landmarks extracted once);
* ``no_face_fraction`` - share of generated frames where MediaPipe found no face (the averages above
  exclude them; they are counted, never scored as zero).

:func:`heldout_truth` gives the truth of a mini-corpus clip at a generation's size and face crop (the
frames and landmarks the kit's Lmk2Video models are trained on);
:func:`~aniportrait_lib.studies.generate_video.evaluate_heldout_generation` generates every held-out clip
and scores it (notebook 05's measure, averaged over the clips by :meth:`HeldoutEvaluation.summary`);
:func:`mean_psnr` compares two videos (e.g. a speed option with the full-quality one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip
from aniportrait_lib.evaluation.audio2lmk_eval import rms_envelope
from aniportrait_lib.evaluation.video_metrics import psnr
from aniportrait_lib.landmarks.mouth import mouth_opening
from aniportrait_lib.video_io import read_frames

__all__ = [
    "HeldoutEvaluation",
    "HeldoutTruth",
    "Reextracted",
    "TalkingVideoScores",
    "finite_correlation",
    "heldout_truth",
    "mean_psnr",
    "reextract",
    "score_talking_video",
]


@dataclass
class HeldoutTruth:
    """One mini-corpus clip as a generated video of it should look (T frames at 30 fps)."""

    clip_id: str
    audio_path: Path  # the speech, 16 kHz wav
    samples: np.ndarray  # (N,) float32 speech samples
    frames: np.ndarray  # (T, S, S, 3) uint8 true frames, face-cropped and resized like training frames
    lmks2d: np.ndarray  # (T, 468, 2) true landmarks in pixels of those frames
    mesh: np.ndarray  # (T, 468, 3) true canonical mesh (cm): reference mesh + true offsets
    pose: np.ndarray  # (T, 6) true head pose relative to the portrait (a pose template)


def heldout_truth(corpus, clip_id: str, size: int, crop_scale: float | None = None) -> HeldoutTruth:
    """The truth of ``clip_id`` at ``size`` px, cut like the kit's Lmk2Video training frames
    (:func:`~aniportrait_lib.data.corpus_frames.load_clip`; ``crop_scale`` None = whole frames)."""
    frames, lmks = load_clip(corpus, clip_id, size, corpus_crop_box(corpus, crop_scale))
    truth = corpus.truth(clip_id)
    samples, _ = corpus.audio(clip_id)
    mesh = corpus.reference().lmks3d[None] + truth.offsets
    return HeldoutTruth(clip_id, corpus.audio_path(clip_id), samples, frames, lmks * size, mesh, truth.pose)


@dataclass
class Reextracted:
    """MediaPipe's face in each of N frames; NaN rows where no face was found."""

    lmks2d: np.ndarray  # (N, 468, 2) pixels of the frames
    lmks3d: np.ndarray  # (N, 468, 3) canonical metric mesh (cm)
    found: np.ndarray  # (N,) bool


def reextract(frames, extractor, upscale_to: int = 256) -> Reextracted:
    """Landmarks of every frame of ``frames`` (N, H, W, 3) uint8 RGB (or any sequence of such frames).

    Args:
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor` (IMAGE mode per frame).
        upscale_to: frames are enlarged (bicubic) to at least this shorter side before detection.
    """
    frames = list(frames)
    lmks2d, lmks3d = np.full((len(frames), 468, 2), np.nan), np.full((len(frames), 468, 3), np.nan)
    found = np.zeros(len(frames), bool)
    for i, frame in enumerate(frames):
        height, width = frame.shape[:2]
        scale = max(1.0, upscale_to / min(height, width))
        big = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
        try:
            face = extractor.detect(big, "rgb", where=f"generated frame {i}")
        except ValueError:  # no face: counted in `found`, not an error of the metric
            continue
        lmks2d[i] = face.lmks[:468, :2] * np.array([width, height])
        lmks3d[i], found[i] = face.lmks3d, True
    return Reextracted(lmks2d, lmks3d, found)


@dataclass
class TalkingVideoScores:
    """:func:`score_talking_video`'s result: the summary numbers and the per-frame curves behind them."""

    summary: dict[str, float]  # the metrics of the module docstring (NaN where not measurable)
    mouth_truth: np.ndarray  # (N,) true mouth opening (cm)
    mouth_generated: np.ndarray  # (N,) re-extracted from the video (cm; NaN where no face)
    envelope: np.ndarray  # (N,) RMS loudness per frame
    landmark_px: np.ndarray  # (N,) per-frame landmark distance (NaN where no face)
    landmark_px_reference: np.ndarray  # (N,) the same for the unchanged portrait


def finite_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two ``(N,)`` series over the entries finite in both; NaN with fewer than 3
    such entries or a constant series (undefined)."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) < 1e-9 or np.ptp(b[keep]) < 1e-9:
        return math.nan
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def score_talking_video(
    frames: np.ndarray,
    reference_image: np.ndarray,
    truth_lmks2d: np.ndarray,
    truth_mesh: np.ndarray,
    samples: np.ndarray,
    extractor,
    upscale_to: int = 256,
    fps: float = 30.0,
    sampling_rate: int = 16_000,
) -> TalkingVideoScores:
    """Score a generated clip against its truth and the two baselines (module docstring).

    Args:
        frames: (N, S, S, 3) uint8 generated frames; ``reference_image`` the portrait at the same size.
        truth_lmks2d: (N', 468, 2) true landmarks in pixels of the frames; ``truth_mesh`` (N', 468, 3) cm.
            Only the first ``min(N, N')`` frames are compared (video and truth may differ by a frame).
        samples: the speech, (samples,) at ``sampling_rate``, starting with frame 0.
    """
    n = min(len(frames), len(truth_lmks2d), len(truth_mesh))
    if n == 0:
        raise ValueError("no frames to score")
    if reference_image.shape != frames[0].shape:
        raise ValueError(f"reference image {reference_image.shape} and frames {frames[0].shape} differ")
    faces = reextract(frames[:n], extractor, upscale_to)
    truth_lmks2d = np.asarray(truth_lmks2d[:n], np.float64)
    truth_mesh = np.asarray(truth_mesh[:n], np.float64)
    reference = reextract([reference_image], extractor, upscale_to)
    mouth_truth = mouth_opening(truth_mesh)
    mouth_generated = np.where(faces.found, mouth_opening(np.nan_to_num(faces.lmks3d)), np.nan)
    envelope = rms_envelope(samples, n, sampling_rate, fps)
    landmark_px = np.linalg.norm(faces.lmks2d - truth_lmks2d[:, :468], axis=-1).mean(axis=-1)
    reference_px = np.linalg.norm(reference.lmks2d[0] - truth_lmks2d[:, :468], axis=-1).mean(axis=-1)
    found = faces.found
    summary = {
        "mouth_corr": finite_correlation(mouth_generated[found], mouth_truth[found]),
        "mouth_corr_envelope": finite_correlation(envelope, mouth_truth),
        "landmark_px": float(landmark_px[found].mean()) if found.any() else math.nan,
        "landmark_px_reference": float(np.mean(reference_px)),  # NaN only if the portrait has no face
        "no_face_fraction": float(1.0 - found.mean()),
    }
    return TalkingVideoScores(summary, mouth_truth, mouth_generated, envelope, landmark_px, reference_px)


@dataclass
class HeldoutEvaluation:
    """One generated video and its scores per held-out clip
    (:func:`~aniportrait_lib.studies.generate_video.evaluate_heldout_generation`'s result)."""

    clip_ids: list[str]
    videos: list[Path]
    scores: list[TalkingVideoScores]

    def summary(self) -> dict[str, float]:
        """Every summary metric averaged over the clips (NaN values left out; NaN if all are)."""
        keys = self.scores[0].summary
        mean = {}
        for key in keys:
            values = np.array([s.summary[key] for s in self.scores], np.float64)
            mean[key] = float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else math.nan
        return mean

    def table(self):
        """Per-clip summaries and their mean, as a ``pandas.DataFrame`` (one row per clip)."""
        rows = {clip: s.summary for clip, s in zip(self.clip_ids, self.scores, strict=True)}
        return pd.DataFrame({**rows, "mean": self.summary()}).T


def mean_psnr(video: str | Path, reference: str | Path) -> float:
    """Mean PSNR (dB) of ``video``'s frames against ``reference``'s, over their common length.

    Frames of another size are resized (bilinear) to the reference's size first.
    """
    values = []
    for frame, target in zip(read_frames(video), read_frames(reference), strict=False):
        if frame.shape != target.shape:
            frame = cv2.resize(frame, target.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        values.append(min(psnr(frame, target), 100.0))
    if not values:
        raise ValueError(f"{video} or {reference} has no frames")
    return float(np.mean(values))
