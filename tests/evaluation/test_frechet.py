"""FID / FVD: the Fréchet maths against closed forms, and the full paths through TorchScript stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from standins_frechet import write_fid_standin, write_fvd_standin

from aniportrait_lib.evaluation.frechet import (
    FVD_SIZE,
    FeatureMoments,
    fid,
    frechet_distance,
    fvd,
    fvd_clips,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _videos(seed: int, count: int, frames: int, size: tuple[int, int] = (24, 24)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def fid_standin(tmp_path_factory):
    return write_fid_standin(tmp_path_factory.mktemp("metrics") / "inception-2015-12-05.pt")


@pytest.fixture(scope="module")
def fvd_standin(tmp_path_factory):
    return write_fvd_standin(tmp_path_factory.mktemp("metrics") / "i3d_torchscript.pt")


# --- the Fréchet distance itself -------------------------------------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    # rotate both by one orthogonal matrix: the distance must not change; the matrices are no longer diagonal
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    got = frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("samples, width", [(12, 400), (300, 40)])
def test_identical_sets_are_zero_even_with_a_singular_covariance(samples, width):
    # 12 samples of 400 features: rank 11, the case of a small evaluation set. Without the rank tolerance the
    # ~390 noise eigenvalues' square roots add up to about -3e-7 of the trace; with it, ~1e-15.
    x = np.random.default_rng(1).normal(1.0, 3.0, (samples, width))
    mu, sigma = _stats(x)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) <= 1e-9 * np.trace(sigma)


def test_a_set_shifted_by_a_constant_is_at_its_squared_norm():
    x = np.random.default_rng(2).normal(size=(200, 8)) @ np.random.default_rng(3).normal(size=(8, 8))
    c = np.linspace(-2.0, 3.0, 8)
    assert frechet_distance(*_stats(x + c), *_stats(x)) == pytest.approx(np.sum(c**2), rel=1e-9)


def test_scaled_gaussians_in_one_dimension():
    # N(0, a²) vs N(0, b²): d² = (a − b)²
    assert frechet_distance(np.zeros(1), np.array([[4.0]]), np.zeros(1), np.array([[9.0]])) == pytest.approx(
        1.0
    )


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_feature_moments_match_numpy_over_uneven_batches():
    x = np.random.default_rng(4).normal(1e4, 2.0, (101, 5))  # a large offset: no Σx² − nμ² cancellation
    moments = FeatureMoments(5)
    for start, stop in [(0, 1), (1, 34), (34, 34), (34, 101)]:
        moments.add(x[start:stop])
    assert moments.count == 101
    np.testing.assert_allclose(moments.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(moments.covariance(), np.cov(x, rowvar=False), rtol=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureMoments(5).covariance()


# --- FID ------------------------------------------------------------------------------------------------


def test_fid_of_identical_frames_is_zero_however_they_are_split_into_videos(fid_standin):
    generated = _videos(0, 2, 6)
    reference = [np.concatenate(generated)]  # the same 12 frames as one video: frames are pooled
    assert abs(fid(generated, reference, fid_standin, batch_size=5)) < 1e-9


def test_fid_of_different_frames_is_positive(fid_standin):
    generated, reference = _videos(0, 2, 6), _videos(1, 2, 6, size=(32, 20))
    assert fid(generated, reference, fid_standin) > 1e-4


def test_fid_rejects_files_that_are_not_the_inception(tmp_path, fid_standin):
    frames = _videos(0, 1, 3)
    text = tmp_path / "inception-2015-12-05.pt"
    text.write_text("not a network\n")
    with pytest.raises(ValueError, match=f"{text}.*not a TorchScript file"):
        fid(frames, frames, text)
    state_dict = tmp_path / "state_dict.pt"
    torch.save({"w": torch.zeros(3)}, state_dict)
    with pytest.raises(ValueError, match=f"{state_dict}.*not a TorchScript file"):
        fid(frames, frames, state_dict)
    narrow = write_fid_standin(tmp_path / "narrow.pt", features=10)
    with pytest.raises(ValueError, match=rf"{narrow}: gives features \(3, 10\), expected \(3, 2048\)"):
        fid(frames, frames, narrow)
    i3d = write_fvd_standin(tmp_path / "i3d.pt")
    with pytest.raises(ValueError, match=f"{i3d}: calling it as the FID Inception-v3"):
        fid(frames, frames, i3d)
    with pytest.raises(ValueError, match=f"{tmp_path / 'missing.pt'}: no such file"):
        fid(frames, frames, tmp_path / "missing.pt")


def test_fid_checks_its_inputs(fid_standin):
    with pytest.raises(ValueError, match="generated video 0: expected uint8"):
        fid([np.zeros((3, 8, 8, 3), np.float32)], _videos(0, 1, 3), fid_standin)
    with pytest.raises(ValueError, match="generated gives 1 frames"):
        fid(_videos(0, 1, 1), _videos(0, 1, 3), fid_standin)


# --- FVD ------------------------------------------------------------------------------------------------


def test_fvd_clips_are_back_to_back_resized_and_scaled():
    video = np.repeat(np.arange(0, 40 * 6, 6, dtype=np.uint8)[:, None, None, None], 3, axis=3)
    video = np.ascontiguousarray(np.broadcast_to(video, (40, 30, 50, 3)))  # frame k is grey level 6k
    clips = fvd_clips(video, clip_frames=16)
    assert clips.shape == (2, 3, 16, FVD_SIZE, FVD_SIZE)  # frames 32-39 are left over
    assert clips.dtype == torch.float32
    expected = 2.0 * (6.0 * np.arange(32).reshape(2, 16)) / 255.0 - 1.0  # clip k, time t <- frame 16k + t
    np.testing.assert_allclose(
        clips[:, :, :, 100, 7].numpy(), np.repeat(expected[:, None], 3, axis=1), atol=1e-6
    )
    assert clips.min() >= -1.0 and clips.max() <= 1.0


def test_fvd_of_identical_videos_is_zero(fvd_standin):
    videos = _videos(0, 2, 33, size=(40, 48))  # 2 clips each, one frame left over
    assert abs(fvd(videos, videos, fvd_standin, batch_size=3)) < 1e-9


def test_fvd_of_different_videos_is_positive(fvd_standin):
    generated, reference = _videos(0, 2, 32, size=(40, 48)), _videos(1, 2, 32, size=(40, 48))
    assert fvd(generated, reference, fvd_standin) > 1e-4


def test_fvd_needs_clip_frames_per_video_and_two_clips_per_set(fvd_standin):
    with pytest.raises(ValueError, match="reference video 1 has 10 frames, fewer than clip_frames=16"):
        fvd(_videos(0, 2, 16), [*_videos(0, 1, 16), *_videos(1, 1, 10)], fvd_standin)
    with pytest.raises(ValueError, match="generated gives 1 clips of 16 frames"):
        fvd(_videos(0, 1, 20), _videos(0, 2, 16), fvd_standin)


def test_fvd_rejects_files_that_are_not_the_i3d(tmp_path, fid_standin):
    videos = _videos(0, 2, 16, size=(16, 16))
    text = tmp_path / "i3d_torchscript.pt"
    text.write_text("not a network\n")
    with pytest.raises(ValueError, match=f"{text}.*not a TorchScript file"):
        fvd(videos, videos, text)
    narrow = write_fvd_standin(tmp_path / "narrow.pt", features=7)
    with pytest.raises(ValueError, match=rf"{narrow}: gives features \(1, 7\), expected \(1, 400\)"):
        fvd(videos, videos, narrow)
    with pytest.raises(ValueError, match=f"{fid_standin}: calling it as the FVD I3D"):
        fvd(videos, videos, fid_standin)
