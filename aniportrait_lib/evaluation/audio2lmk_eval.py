"""Audio2Lmk on held-out clips: lip sync, projected landmarks and head motion, against two baselines.

Metrics (per clip, then averaged over clips):

* ``lve`` — lip vertex error (cm, :func:`~.lip_metrics.lip_vertex_error`, MeshTalk/FaceFormer);
* ``mouth_corr`` — Pearson correlation of predicted and true mouth opening (NaN for a constant
  prediction such as the mean mesh);
* ``landmark_px`` — mean 2D distance (pixels) between the predicted mesh and the true mesh, both
  projected with the **true** pose (isolates the mesh); ``landmark_px_full`` uses the predicted
  pose for the prediction (the whole Audio2Lmk output against the truth);
* ``pose_std_ratio`` — mean over the three rotation axes of std(predicted) / std(true)
  (1 = as lively as the truth; head motion is not unique given speech, so per-frame pose error
  says little, but too little or too much motion is visible); ``pose_l1_deg`` for reference;
* ``beat_align`` / ``beat_align_truth`` / ``beat_align_chance`` — see :func:`beat_alignment` and
  :func:`onset_coverage` (speech has an onset every syllable, so the chance level is high).

Baselines, computed in the same run from the training clips only:

* **mean mesh** — every frame is the mean training offset field; the pose is the mean training pose;
* **loudness envelope** — the RMS envelope of the (normalised) speech at 30 fps mapped to the
  offsets by a least-squares affine map fitted on all training frames,
  ``offsets_t ≈ A + e_t · B`` with per-vertex fields A, B (468, 3) — an honest "the mouth opens
  when the voice is loud" model, not a strawman. Its pose is the mean training pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from aniportrait_lib.evaluation.landmark_metrics import landmark_distance
from aniportrait_lib.evaluation.lip_metrics import lip_vertex_error, mouth_opening_correlation
from aniportrait_lib.landmarks.camera import project_points
from aniportrait_lib.landmarks.mouth import mouth_opening


@dataclass(frozen=True)
class BeatConfig:
    """How head-motion peaks and audio onsets are matched (kit definitions)."""

    tolerance_s: float = 0.1
    """A head-motion peak counts as on the beat within ±100 ms of an audio onset (kit choice,
    ~3 frames at 30 fps, the usual beat-alignment window in co-speech motion papers)."""
    min_prominence: float = 0.25
    """Velocity extrema smaller than this fraction of the clip's velocity std are ignored (noise)."""
    axis: int = 0
    """Pose component whose velocity is used: 0 = pitch (nods)."""


def rms_envelope(samples: np.ndarray, n_frames: int, sampling_rate: int = 16000, fps: int = 30) -> np.ndarray:
    """RMS loudness per video frame: (N,) samples → (n_frames,) float64.

    Frame t is the RMS of the window of two frame lengths centred on the frame's centre
    ``(t + 0.5) / fps`` (zero-padded at the clip's ends).
    """
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 1:
        raise ValueError(f"samples must be 1-D (N,), got {samples.shape}")
    hop = sampling_rate / fps
    centres = (np.arange(n_frames) + 0.5) * hop
    padded = np.pad(samples, (int(hop) + 1, int(hop) + 1))
    cumulative = np.concatenate([[0.0], np.cumsum(padded * padded)])
    start = np.clip(np.round(centres - hop).astype(int) + int(hop) + 1, 0, len(padded))
    stop = np.clip(np.round(centres + hop).astype(int) + int(hop) + 1, 0, len(padded))
    return np.sqrt((cumulative[stop] - cumulative[start]) / np.maximum(stop - start, 1))


@dataclass
class EnvelopeBaseline:
    """``offsets_t = intercept + envelope_t · slope`` with (468, 3) fields (see the module docstring)."""

    intercept: np.ndarray  # (468, 3) cm
    slope: np.ndarray  # (468, 3) cm per unit of RMS

    @classmethod
    def fit(cls, envelopes: list[np.ndarray], offsets: list[np.ndarray]) -> EnvelopeBaseline:
        """Least squares over every training frame: envelopes (T_i,), offsets (T_i, 468, 3)."""
        if not envelopes or len(envelopes) != len(offsets):
            raise ValueError(f"need matching, non-empty lists, got {len(envelopes)} and {len(offsets)}")
        e = np.concatenate([np.asarray(x, np.float64) for x in envelopes])
        y = np.concatenate([np.asarray(x, np.float64) for x in offsets])
        if len(e) != len(y):
            raise ValueError(f"{len(e)} envelope frames but {len(y)} offset frames")
        design = np.stack([np.ones_like(e), e], axis=1)  # (F, 2)
        coef, *_ = np.linalg.lstsq(design, y.reshape(len(y), -1), rcond=None)
        return cls(coef[0].reshape(468, 3), coef[1].reshape(468, 3))

    def predict(self, envelope: np.ndarray) -> np.ndarray:
        """(T,) envelope → (T, 468, 3) offsets."""
        return self.intercept[None] + np.asarray(envelope, np.float64)[:, None, None] * self.slope[None]


def audio_onsets(samples: np.ndarray, sampling_rate: int = 16000) -> np.ndarray:
    """Onset times (s) of speech, ``librosa.onset.onset_detect`` with its defaults (hop 512)."""
    return librosa.onset.onset_detect(
        y=np.asarray(samples, np.float32), sr=sampling_rate, units="time", backtrack=False
    )


def motion_peaks(pose: np.ndarray, fps: float = 30.0, config: BeatConfig = BeatConfig()) -> np.ndarray:
    """Times (s) of the extrema of the head's angular velocity along ``config.axis`` (pose (T, 6))."""
    velocity = np.gradient(np.asarray(pose, np.float64)[:, config.axis]) * fps
    scale = velocity.std()
    if len(velocity) < 3 or scale < 1e-9:  # a still head (float noise only) has no peaks
        return np.zeros(0)
    prominence = config.min_prominence * scale
    peaks = np.concatenate(
        [find_peaks(velocity, prominence=prominence)[0], find_peaks(-velocity, prominence=prominence)[0]]
    )
    return np.sort(peaks) / fps


def onset_coverage(onset_times: np.ndarray, duration_s: float, tolerance_s: float = 0.1) -> float:
    """Chance level of :func:`beat_alignment`: the share of the clip within ±tolerance of an onset.

    Peaks placed at random times would be "on the beat" this often; speech has an onset every
    syllable, so this is high and a method's value should be read against it.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    grid = np.linspace(0.0, duration_s, 1000)
    onsets = np.asarray(onset_times, np.float64)
    if len(onsets) == 0:
        return 0.0
    return float((np.abs(grid[:, None] - onsets[None, :]).min(axis=1) <= tolerance_s).mean())


def _mouth_corr(mesh_pred: np.ndarray, mesh_true: np.ndarray) -> float:
    """Mouth-opening correlation, NaN when the prediction's mouth does not move (e.g. the mean mesh)."""
    if np.ptp(mouth_opening(mesh_pred)) < 1e-6:  # cm; float noise of a constant mesh
        return float("nan")
    return mouth_opening_correlation(mesh_pred, mesh_true)


def beat_alignment(peak_times: np.ndarray, onset_times: np.ndarray, tolerance_s: float = 0.1) -> float:
    """Fraction of head-motion peaks within ±``tolerance_s`` of an audio onset (NaN without peaks)."""
    peaks, onsets = np.asarray(peak_times, np.float64), np.asarray(onset_times, np.float64)
    if len(peaks) == 0:
        return float("nan")
    if len(onsets) == 0:
        return 0.0
    nearest = np.abs(peaks[:, None] - onsets[None, :]).min(axis=1)
    return float((nearest <= tolerance_s).mean())


@dataclass
class ClipPrediction:
    """What a method predicts for one clip: offsets (T, 468, 3) cm and pose (T, 6)."""

    offsets: np.ndarray
    pose: np.ndarray


def _std_ratio(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean over axes of std(predicted) / std(true), over the axes where the truth moves (else NaN)."""
    std_true = true.std(axis=0)
    moving = std_true > 1e-9
    if not moving.any():
        return float("nan")
    return float((predicted.std(axis=0)[moving] / std_true[moving]).mean())


def clip_metrics(
    prediction: ClipPrediction,
    truth_offsets: np.ndarray,
    truth_pose: np.ndarray,
    reference,
    samples: np.ndarray,
    fps: float = 30.0,
    beat: BeatConfig = BeatConfig(),
) -> dict[str, float]:
    """All metrics of one clip (module docstring); ``reference`` has ``lmks3d``, ``trans_mat``, ``image``."""
    if prediction.offsets.shape != truth_offsets.shape or prediction.pose.shape != truth_pose.shape:
        raise ValueError(
            f"prediction {prediction.offsets.shape}/{prediction.pose.shape} does not match truth "
            f"{truth_offsets.shape}/{truth_pose.shape}"
        )
    mesh_pred = reference.lmks3d[None] + prediction.offsets
    mesh_true = reference.lmks3d[None] + truth_offsets
    size = reference.image.shape[:2]
    true_2d = project_points(mesh_true, reference.trans_mat, truth_pose, size)
    mesh_2d = project_points(mesh_pred, reference.trans_mat, truth_pose, size)
    full_2d = project_points(mesh_pred, reference.trans_mat, prediction.pose, size)
    onsets = audio_onsets(samples)
    return {
        "lve": lip_vertex_error(mesh_pred, mesh_true),
        "mouth_corr": _mouth_corr(mesh_pred, mesh_true),
        "landmark_px": float(landmark_distance(mesh_2d, true_2d).mean()),
        "landmark_px_full": float(landmark_distance(full_2d, true_2d).mean()),
        "pose_l1_deg": float(np.abs(prediction.pose[:, :3] - truth_pose[:, :3]).mean()),
        "pose_std_ratio": _std_ratio(prediction.pose[:, :3], truth_pose[:, :3]),
        "beat_align": beat_alignment(motion_peaks(prediction.pose, fps, beat), onsets, beat.tolerance_s),
        "beat_align_truth": beat_alignment(motion_peaks(truth_pose, fps, beat), onsets, beat.tolerance_s),
        "beat_align_chance": onset_coverage(onsets, len(truth_pose) / fps, beat.tolerance_s),
    }


@dataclass
class Baselines:
    """The two reference methods, fitted on training clips (see the module docstring)."""

    mean_offsets: np.ndarray  # (468, 3) cm
    mean_pose: np.ndarray  # (6,)
    envelope: EnvelopeBaseline

    @classmethod
    def fit(cls, train_clips: list) -> Baselines:
        """``train_clips``: aligned clips (:class:`~aniportrait_lib.data.audio_dataset.ClipArrays`)."""
        if not train_clips:
            raise ValueError("fitting the baselines needs at least one training clip")
        offsets = [clip.offsets for clip in train_clips]
        envelopes = [rms_envelope(clip.input_values, clip.seq_len) for clip in train_clips]
        return cls(
            mean_offsets=np.concatenate(offsets).mean(axis=0),
            mean_pose=np.concatenate([clip.pose for clip in train_clips]).mean(axis=0),
            envelope=EnvelopeBaseline.fit(envelopes, offsets),
        )

    def predict(self, clip) -> dict[str, ClipPrediction]:
        """``{"mean mesh": ..., "loudness envelope": ...}`` for one aligned clip."""
        pose = np.repeat(self.mean_pose[None], clip.seq_len, axis=0)
        envelope = rms_envelope(clip.input_values, clip.seq_len)
        return {
            "mean mesh": ClipPrediction(np.repeat(self.mean_offsets[None], clip.seq_len, axis=0), pose),
            "loudness envelope": ClipPrediction(self.envelope.predict(envelope), pose),
        }


def predict_clip(mesh_model, pose_model, clip, motion_config=None) -> ClipPrediction:
    """Audio2Mesh + Audio2Pose on one aligned clip with the kit's inference path.

    ``motion_config`` defaults to :class:`~aniportrait_lib.audio.inference.MotionConfig` with
    ``rotation_scale=1``: the official × 0.5 on rotations compensates for the released model's
    training data; a model trained on the corpus is compared with the corpus's own amplitudes.
    """
    # the audio package loads torch and transformers: only running the models needs them; metrics are numpy
    from aniportrait_lib.audio.features import AudioFeatures
    from aniportrait_lib.audio.inference import MotionConfig, mesh_offsets_from_audio, pose_from_audio

    config = motion_config or MotionConfig(rotation_scale=1.0)
    features = AudioFeatures(clip.input_values, clip.seq_len, 16000, clip.clip_id)
    offsets = mesh_offsets_from_audio(mesh_model, features, config)
    return ClipPrediction(offsets, pose_from_audio(pose_model, features, clip.style_id, config))


MODEL = "Audio2Lmk"
"""Row name of the evaluated models in the result tables."""


@dataclass
class Audio2LmkEvaluation:
    """Results: ``per_clip`` (one row per method × clip) and ``summary`` (methods × metrics means)."""

    per_clip: pd.DataFrame
    summary: pd.DataFrame
    predictions: dict[str, dict[str, ClipPrediction]]
    """``predictions[clip_id][method]`` for every held-out clip (for plots and videos)."""


def evaluate_audio2lmk(
    mesh_model,
    pose_model,
    train_clips: list,
    heldout_clips: list,
    reference,
    motion_config=None,
    beat: BeatConfig = BeatConfig(),
) -> Audio2LmkEvaluation:
    """Model vs the two baselines on every held-out clip (models in eval mode, on their device).

    Args:
        train_clips / heldout_clips: aligned whole clips (``ClipArrays``, e.g. ``dataset.clip(i)``).
        reference: the corpus's :class:`~aniportrait_lib.data.render.Reference` (mesh, camera, size).
    """
    if not heldout_clips:
        raise ValueError("no held-out clips to evaluate on")
    baselines = Baselines.fit(train_clips)
    rows, predictions = [], {}
    for clip in heldout_clips:
        methods = {MODEL: predict_clip(mesh_model, pose_model, clip, motion_config)}
        methods.update(baselines.predict(clip))
        predictions[clip.clip_id] = methods
        for method, prediction in methods.items():
            scores = clip_metrics(
                prediction, clip.offsets, clip.pose, reference, clip.input_values, beat=beat
            )
            rows.append({"method": method, "clip_id": clip.clip_id, **scores})
    per_clip = pd.DataFrame(rows)
    order = list(dict.fromkeys(per_clip["method"]))
    summary = per_clip.drop(columns="clip_id").groupby("method", sort=False).mean().loc[order]
    return Audio2LmkEvaluation(per_clip, summary, predictions)
