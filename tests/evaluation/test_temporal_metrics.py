"""Flicker and landmark jitter on constructed videos and tracks (a stand-in extractor; no MediaPipe)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from aniportrait_lib.evaluation.temporal_metrics import (
    detect_track,
    flicker,
    landmark_acceleration,
    landmark_jitter,
    mouth_following,
    region_box,
    score_temporal,
    summarize_temporal,
    temporal_energy_ratio,
)
from aniportrait_lib.evaluation.video_metrics import MOUTH_LANDMARKS

N, SIZE = 12, 48


@pytest.fixture
def moving() -> np.ndarray:
    """A grey video with a bright square sliding one pixel per frame (values away from 0 and 255)."""
    video = np.full((N, SIZE, SIZE, 3), 100, np.uint8)
    for t in range(N):
        video[t, 10:26, 8 + t : 24 + t] = 170
    return video


@pytest.fixture
def lmks() -> np.ndarray:
    """Driving landmarks ``(N, 468, 2)``: a face in the middle, lips lower down, drifting smoothly."""
    rng = np.random.default_rng(0)
    base = rng.uniform(12, 36, size=(468, 2))
    base[list(MOUTH_LANDMARKS)] = rng.uniform([20, 30], [28, 34], size=(len(MOUTH_LANDMARKS), 2))
    t = np.arange(N)[:, None, None]
    return base[None] + 0.3 * t + 0.02 * t**2  # constant acceleration 0.04 px/frame² per axis


def _noisy(video: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, video.shape)
    return np.clip(video.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def test_a_constant_video_has_no_flicker_against_a_static_truth(moving):
    still = np.repeat(moving[:1], N, axis=0)
    assert np.all(flicker(still, still) == 0)
    assert temporal_energy_ratio(still, still) == 1.0
    assert np.all(flicker(moving, moving) == 0) and temporal_energy_ratio(moving, moving) == 1.0


def test_a_frozen_video_misses_the_truths_motion(moving):
    frozen = np.repeat(moving[:1], N, axis=0)
    per_transition = flicker(frozen, moving)
    assert per_transition.shape == (N - 1,) and np.all(per_transition > 0)
    assert temporal_energy_ratio(frozen, moving) == 0.0  # no change at all where the truth changes
    assert temporal_energy_ratio(moving, frozen) == math.inf


def test_flicker_grows_monotonically_with_per_frame_noise(moving):
    values = [flicker(_noisy(moving, sigma), moving).mean() for sigma in (0.0, 2.0, 5.0, 10.0, 20.0)]
    assert values[0] == 0 and all(a < b for a, b in zip(values, values[1:], strict=False))
    # i.i.d. noise: E|n[t+1] − n[t]| = 2σ/√π (rounding to uint8 adds a little at small σ)
    assert values[3] == pytest.approx(2 * 10.0 / math.sqrt(math.pi), rel=0.05)
    ratios = [temporal_energy_ratio(_noisy(moving, sigma), moving) for sigma in (2.0, 10.0, 20.0)]
    assert 1.0 < ratios[0] < ratios[1] < ratios[2]


def test_boxes_cover_their_landmarks_over_all_frames_and_localise_flicker(moving, lmks):
    face = region_box(lmks, (SIZE, SIZE))
    mouth = region_box(lmks, (SIZE, SIZE), MOUTH_LANDMARKS)
    assert face[0] <= lmks[..., 0].min() and face[2] >= min(SIZE, lmks[..., 0].max())
    assert face[0] <= mouth[0] < mouth[2] <= face[2] and face[1] <= mouth[1] < mouth[3] <= face[3]
    x0, y0, x1, y1 = mouth
    noisy = moving.copy()
    noisy[:, y0:y1, x0:x1] = _noisy(moving, 15.0)[:, y0:y1, x0:x1]  # flicker in the mouth only
    assert flicker(noisy, moving, mouth).mean() > 3 * flicker(noisy, moving).mean() > 0
    with pytest.raises(ValueError, match="no finite landmark"):
        region_box(np.full((3, 468, 2), np.nan), (SIZE, SIZE))


def test_jitter_of_a_smooth_track_is_zero_and_noise_raises_it(lmks):
    assert landmark_acceleration(lmks).shape == (N - 2, 468, 2)
    assert np.allclose(landmark_jitter(lmks, lmks), 0)
    assert np.allclose(landmark_jitter(lmks + 5.0, lmks), 0)  # a constant offset is not jitter
    rng = np.random.default_rng(2)
    small = landmark_jitter(lmks + rng.normal(0, 0.2, lmks.shape), lmks).mean()
    large = landmark_jitter(lmks + rng.normal(0, 1.0, lmks.shape), lmks).mean()
    assert 0 < small < large
    linear = lmks[:1] + 0.3 * np.arange(N)[:, None, None]  # same path without its acceleration
    assert np.allclose(landmark_jitter(linear, lmks), 0.04 * math.sqrt(2))


def test_missing_faces_blank_the_triples_they_touch(lmks):
    found = lmks.copy()
    found[5] = np.nan
    jitter = landmark_jitter(found, lmks)
    assert np.isnan(jitter[3:6]).all() and np.isfinite(np.delete(jitter, [3, 4, 5])).all()
    with pytest.raises(ValueError, match="disagree"):
        landmark_jitter(found[:-1], lmks)


class FakeExtractor:
    """Returns the driving landmarks (normalised) plus a fixed per-frame wobble; frame 3 has 'no face'."""

    def __init__(self, lmks: np.ndarray, wobble: float):
        self.lmks, self.wobble, self.calls = lmks, wobble, 0

    def detect(self, image, channel_order):
        t, self.calls = self.calls, self.calls + 1
        assert image.shape[0] >= 96  # upscaled before detection
        if t == 3:
            raise ValueError("no face found")
        offset = self.wobble * (-1) ** t
        return SimpleNamespace(lmks=(self.lmks[t] + offset) / SIZE)


def _speaking(lmks: np.ndarray, amplitude: float) -> np.ndarray:
    """``lmks`` with the lower inner-lip midpoint (14) opening and closing by ``amplitude`` pixels."""
    speaking = lmks.copy()
    speaking[:, 14, 1] += amplitude * (1 + np.sin(np.arange(N) * 1.3))
    return speaking


def test_mouth_following_reads_a_damped_or_frozen_mouth(lmks):
    driving = _speaking(lmks, 2.0)
    assert mouth_following(driving, driving) == pytest.approx((1.0, 1.0))
    damped = _speaking(lmks, 0.5)
    corr, ratio = mouth_following(damped, driving)
    assert corr == pytest.approx(1.0) and ratio == pytest.approx(0.25, rel=1e-3)
    frozen_corr, frozen_ratio = mouth_following(lmks, driving)
    assert math.isnan(frozen_corr) and frozen_ratio == 0
    late = np.roll(driving, 3, axis=0)  # the mouth three frames late
    assert mouth_following(late, driving)[0] < 0.5
    missing = driving.copy()
    missing[[2, 5]] = np.nan  # frames without a face are left out, not scored
    assert mouth_following(missing, driving) == pytest.approx((1.0, 1.0))
    assert all(math.isnan(v) for v in mouth_following(driving, lmks))  # the driving mouth does not move
    with pytest.raises(ValueError, match="disagree"):
        mouth_following(driving[:-1], driving)


def test_detect_track_and_score_temporal_with_a_stand_in_extractor(moving, lmks):
    track = detect_track(moving, FakeExtractor(lmks, 0.0), upscale_to=96)
    assert track.shape == (N, 468, 2) and np.isnan(track[3]).all()
    assert np.allclose(np.delete(track, 3, axis=0), np.delete(lmks, 3, axis=0))
    steady = summarize_temporal(score_temporal(moving, moving, lmks, FakeExtractor(lmks, 0.0), 96))
    shaky = summarize_temporal(
        score_temporal(_noisy(moving, 8.0), moving, lmks, FakeExtractor(lmks, 1.0), 96)
    )
    assert steady["flicker_frame"] == steady["flicker_mouth"] == 0 and steady["energy_ratio_face"] == 1
    assert steady["jitter_px"] == pytest.approx(0, abs=1e-9)
    assert steady["jitter_coverage"] == pytest.approx((N - 2 - 3) / (N - 2))
    assert shaky["jitter_px"] == pytest.approx(4.0 * math.sqrt(2))  # ±1 px wobble: |a| = 4 per axis
    assert shaky["flicker_face"] > 0 and shaky["energy_ratio_frame"] > 1
    assert steady["driving_acceleration_px"] == pytest.approx(0.04 * math.sqrt(2))
    no_extractor = summarize_temporal(score_temporal(moving, moving, lmks))
    assert math.isnan(no_extractor["jitter_px"]) and no_extractor["jitter_coverage"] == 0
    assert math.isnan(no_extractor["mouth_corr"]) and math.isnan(no_extractor["mouth_motion_ratio"])
    speaking = _speaking(lmks, 2.0)
    follows = summarize_temporal(score_temporal(moving, moving, speaking, FakeExtractor(speaking, 0.0), 96))
    assert follows["mouth_corr"] == pytest.approx(1.0) and follows["mouth_motion_ratio"] == pytest.approx(1.0)


def test_bad_shapes_are_value_errors(moving, lmks):
    with pytest.raises(ValueError, match="same shape"):
        flicker(moving, moving[:, :10])
    with pytest.raises(ValueError, match="at least 2 frames"):
        flicker(moving[:1], moving[:1])
    with pytest.raises(ValueError, match="one landmark set per frame"):
        score_temporal(moving, moving, lmks[:5])
