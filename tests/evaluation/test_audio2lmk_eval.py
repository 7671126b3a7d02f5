"""Audio2Lmk evaluation: metrics and baselines on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.data.audio_dataset import ClipArrays
from aniportrait_lib.evaluation.audio2lmk_eval import (
    Baselines,
    BeatConfig,
    ClipPrediction,
    EnvelopeBaseline,
    audio_onsets,
    beat_alignment,
    clip_metrics,
    motion_peaks,
    onset_coverage,
    rms_envelope,
)
from aniportrait_lib.landmarks.mouth import LOWER_LIP_INNER_MID


class _Reference:
    """A flat mesh in front of the official camera (enough for projection)."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.lmks3d = np.concatenate([rng.uniform(-6, 6, (468, 2)), rng.uniform(-1, 1, (468, 1))], axis=1)
        self.trans_mat = np.eye(4)
        self.trans_mat[2, 3] = -50.0  # 50 cm in front of the camera
        self.image = np.zeros((64, 64, 3), np.uint8)


def _clip(seed: int, frames: int = 45) -> ClipArrays:
    """A clip whose lower lip drops with a sinusoidal jaw signal; the audio is noise of that loudness."""
    rng = np.random.default_rng(seed)
    jaw = 0.5 + 0.5 * np.sin(np.linspace(0, 6 * np.pi, frames) + seed)
    offsets = np.zeros((frames, 468, 3), np.float32)
    offsets[:, LOWER_LIP_INNER_MID, 1] = -0.6 * jaw
    pose = np.zeros((frames, 6), np.float32)
    pose[:, 0] = 2 * np.sin(np.linspace(0, 4 * np.pi, frames))
    loud = np.repeat(jaw, 16000 // 30 + 1)[: frames * 16000 // 30]
    return ClipArrays(f"c{seed}", (rng.normal(size=loud.size) * loud).astype(np.float32), offsets, pose, 0)


def test_rms_envelope_of_a_constant_and_of_a_step():
    np.testing.assert_allclose(rms_envelope(np.full(16000, 0.5), 30)[1:-1], 0.5, rtol=1e-9)
    step = np.concatenate([np.zeros(8000), np.ones(8000)])
    envelope = rms_envelope(step, 30)
    assert envelope.shape == (30,) and envelope[:12].max() == 0 and np.allclose(envelope[18:-1], 1)


def test_perfect_prediction_scores_zero_error_and_full_correlation():
    clip, reference = _clip(1), _Reference()
    scores = clip_metrics(ClipPrediction(clip.offsets, clip.pose), clip.offsets, clip.pose, reference,
                          clip.input_values)  # fmt: skip
    assert scores["lve"] == 0 and scores["landmark_px"] == 0 and scores["landmark_px_full"] == 0
    assert scores["mouth_corr"] == pytest.approx(1.0) and scores["pose_std_ratio"] == pytest.approx(1.0)
    assert scores["pose_l1_deg"] == 0 and scores["beat_align"] == scores["beat_align_truth"]


def test_mean_mesh_has_no_correlation_and_the_lve_of_its_offset():
    clip, reference = _clip(2), _Reference()
    still = np.repeat(clip.offsets.mean(axis=0)[None], len(clip.offsets), axis=0)
    scores = clip_metrics(ClipPrediction(still, np.zeros_like(clip.pose)), clip.offsets, clip.pose,
                          reference, clip.input_values)  # fmt: skip
    expected = np.abs(clip.offsets[:, LOWER_LIP_INNER_MID, 1] - still[:, LOWER_LIP_INNER_MID, 1]).mean()
    assert scores["lve"] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(scores["mouth_corr"]) and np.isnan(scores["beat_align"])  # nothing moves
    assert scores["pose_std_ratio"] == 0


def test_envelope_baseline_recovers_an_exactly_linear_map():
    rng = np.random.default_rng(0)
    intercept, slope = rng.normal(size=(468, 3)), rng.normal(size=(468, 3))
    envelopes = [rng.uniform(0, 2, 40), rng.uniform(0, 2, 25)]
    offsets = [intercept + e[:, None, None] * slope for e in envelopes]
    fitted = EnvelopeBaseline.fit(envelopes, offsets)
    np.testing.assert_allclose(fitted.intercept, intercept, atol=1e-9)
    np.testing.assert_allclose(fitted.slope, slope, atol=1e-9)
    np.testing.assert_allclose(fitted.predict(envelopes[1]), offsets[1], atol=1e-9)
    with pytest.raises(ValueError, match="40 envelope frames but 25"):
        EnvelopeBaseline.fit([envelopes[0]], [offsets[1]])


def test_baselines_fit_on_training_clips_and_envelope_tracks_loudness():
    baselines = Baselines.fit([_clip(3), _clip(4)])
    held = _clip(5)
    predictions = baselines.predict(held)
    assert set(predictions) == {"mean mesh", "loudness envelope"}
    reference = _Reference()
    envelope = clip_metrics(
        predictions["loudness envelope"], held.offsets, held.pose, reference, held.input_values
    )
    mean = clip_metrics(predictions["mean mesh"], held.offsets, held.pose, reference, held.input_values)
    assert envelope["mouth_corr"] > 0.8  # loudness drives the jaw in this constructed case
    assert envelope["lve"] < mean["lve"]


def test_beat_alignment_on_constructed_peaks():
    assert beat_alignment(np.array([1.0, 2.05, 3.5]), np.array([1.02, 2.0, 2.9]), 0.1) == pytest.approx(2 / 3)
    assert np.isnan(beat_alignment(np.zeros(0), np.array([1.0])))
    assert beat_alignment(np.array([1.0]), np.zeros(0)) == 0.0
    assert onset_coverage(np.array([0.5]), 1.0, 0.1) == pytest.approx(0.2, abs=0.01)


def test_nods_at_clicks_are_on_the_beat():
    """Pitch nods on audio clicks: velocity extrema fall within ±100 ms of the detected onsets."""
    fps, clicks = 30, [0.5, 1.3, 2.1, 2.9]
    audio = np.zeros(int(3.5 * 16000), np.float32)
    for t in clicks:
        start = int(t * 16000)
        audio[start : start + 800] = np.sin(np.arange(800) * 0.3) * np.hanning(800)
    onsets = audio_onsets(audio)
    distance = np.abs(onsets[:, None] - np.array(clicks)[None])  # (onsets, clicks) in seconds
    assert distance.min(axis=0).max() < 0.05 and distance.min(axis=1).max() < 0.06  # one-to-some match
    time_s = np.arange(int(3.5 * fps)) / fps
    pose = np.zeros((len(time_s), 6))
    for t in clicks:  # a 0.2 s dip centred on the click: velocity extrema 50 ms before and after it
        phase = (time_s - t + 0.1) / 0.2
        inside = (phase >= 0) & (phase <= 1)
        pose[inside, 0] += 2 * np.sin(np.pi * phase[inside]) ** 2
    peaks = motion_peaks(pose, fps, BeatConfig())
    assert len(peaks) == 2 * len(clicks)
    assert beat_alignment(peaks, onsets, 0.1) == pytest.approx(1.0)
    shifted = motion_peaks(np.roll(pose, 12, axis=0), fps)  # 400 ms late: between the clicks
    assert beat_alignment(shifted, onsets, 0.1) == 0.0
