"""Pixel and mouth metrics on constructed images (no MediaPipe needed)."""

import math

import numpy as np
import pytest

from aniportrait_lib.evaluation.video_metrics import (
    MOUTH_LANDMARKS,
    FrameScores,
    mouth_box,
    psnr,
    score_frames,
    ssim,
    summarize_scores,
)


@pytest.fixture
def image() -> np.ndarray:
    """A smooth 64×64 RGB test pattern with an edge (structure for SSIM)."""
    y, x = np.mgrid[0:64, 0:64]
    base = np.stack([x * 3, y * 3, (x + y) * 2], axis=-1).astype(np.float64)
    base[20:40, 20:40] = 200
    return np.clip(base, 0, 255).astype(np.uint8)


def test_identical_images_are_perfect(image):
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)


def test_psnr_matches_its_definition(image):
    noisy = image.astype(np.int16).copy()
    noisy[::2, ::2] += 10  # a quarter of the pixels off by 10 → MSE = 25
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    mse = np.mean((noisy.astype(float) - image) ** 2)
    assert psnr(noisy, image) == pytest.approx(10 * math.log10(255**2 / mse))


def test_shifted_image_scores_worse_than_a_slightly_shifted_one(image):
    one = np.roll(image, 1, axis=1)
    four = np.roll(image, 4, axis=1)
    assert psnr(one, image) > psnr(four, image) > 0
    assert 1.0 > ssim(one, image) > ssim(four, image)


def test_shape_mismatch_is_a_value_error(image):
    with pytest.raises(ValueError, match="same shape"):
        psnr(image, image[:32])


def test_mouth_box_contains_the_lips_and_stays_inside():
    rng = np.random.default_rng(0)
    lmks = rng.uniform(10, 50, size=(468, 2))
    lmks[list(MOUTH_LANDMARKS)] = rng.uniform([28, 40], [36, 44], size=(len(MOUTH_LANDMARKS), 2))
    x0, y0, x1, y1 = mouth_box(lmks, (64, 64))
    assert x0 <= 28 and y0 <= 40 and x1 >= 36 and y1 >= 44
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
    assert x1 - x0 < 20  # a mouth box, not the whole face
    edge = mouth_box(np.full((468, 2), 63.5), (64, 64))
    assert edge[2] <= 64 and edge[3] <= 64 and edge[0] < edge[2]


def test_score_frames_and_summary(image):
    lmks = np.full((2, 468, 2), 32.0)
    frames = np.stack([image, np.roll(image, 3, axis=0)])
    scores = score_frames(frames, np.stack([image, image]), lmks, extractor=None)
    assert scores.psnr[0] == math.inf and scores.psnr[1] < 40
    assert scores.mouth_ssim[0] == pytest.approx(1.0)
    summary = summarize_scores(scores)
    assert summary["psnr"] == pytest.approx((100 + scores.psnr[1]) / 2)  # inf capped at 100 dB
    partial = FrameScores(*(np.ones(3) for _ in range(4)), landmark_px=np.array([1.0, np.nan, 3.0]))
    summary = summarize_scores(partial)
    assert summary["landmark_px"] == pytest.approx(2.0)  # mean over frames with a face
    assert summary["no_face_fraction"] == pytest.approx(1 / 3)
