"""Pose2VideoPipeline: context windows, and parity with the official pipeline (oracle cases A and B)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from aniportrait_lib.pipelines.context import clipped_windows, context_windows, wrapping_windows
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.weights.components import load_oracle_components

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)


def test_wrapping_windows_are_the_official_schedule():
    assert wrapping_windows(4) == [[0, 1, 2, 3]]
    assert wrapping_windows(20) == [list(range(16)), [*range(12, 20), *range(8)]]
    assert [w[0] for w in wrapping_windows(40)] == [0, 12, 24, 36]


def test_clipped_windows_stay_inside_the_video():
    windows = clipped_windows(20)
    assert windows == [list(range(16)), list(range(4, 20))]
    for n in (17, 28, 29, 64):
        windows = clipped_windows(n)
        assert all(0 <= i < n for w in windows for i in w)
        assert sorted({i for w in windows for i in w}) == list(range(n))
        assert all(len(w) == 16 for w in windows)
    assert context_windows(20, wrap_around=False) == clipped_windows(20)
    with pytest.raises(ValueError, match="overlap"):
        wrapping_windows(20, 16, 16)


@pytest.fixture(scope="module")
def pipeline_io(oracle_dir):
    return torch.load(oracle_dir / "pipeline_io.pt", weights_only=True)


def _official_pipeline(oracle_dir) -> Pose2VideoPipeline:
    """Fresh components each time: train-mode BatchNorm mutates the guider's running statistics."""
    return Pose2VideoPipeline.from_components(load_oracle_components(oracle_dir, official_compat=True), True)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["A", "B"])
def test_matches_official_pipeline(oracle_dir, pipeline_io, case):
    data = pipeline_io[case]
    pipe = _official_pipeline(oracle_dir)
    pipe.set_progress_bar_config(disable=True)
    ref_image = PIL.Image.open(oracle_dir / "pipe_ref_image.png")
    videos = pipe(
        ref_image,
        data["pose_images"].numpy(),
        data["ref_pose_image"].numpy(),
        width=128,
        height=128,
        num_inference_steps=data["steps"],
        guidance_scale=3.5,
        generator=torch.manual_seed(42),
    ).videos
    assert pipe.scheduler.timesteps.tolist() == data["timesteps"].tolist()
    assert videos.shape == data["video"].shape == (1, 3, data["n_frames"], 128, 128)
    torch.testing.assert_close(videos, data["video"], atol=1e-3, rtol=0)


def test_kit_defaults_run_without_guidance_and_leave_unets_stock(oracle_dir):
    c = load_oracle_components(oracle_dir)
    pipe = Pose2VideoPipeline.from_components(c)
    pipe.set_progress_bar_config(disable=True)
    poses = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    image = PIL.Image.new("RGB", (80, 70), (120, 90, 60))
    out = pipe(image, poses, poses[0], width=64, height=64, num_inference_steps=1, guidance_scale=1.0).videos
    assert out.shape == (1, 3, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert not c.denoising_unet.conv_in._forward_hooks
    assert {type(p).__name__ for p in c.denoising_unet.attn_processors.values()} == {"AttnProcessor2_0"}
    with pytest.raises(ValueError, match="multiples of 8"):
        pipe(image, poses, None, width=60, height=64)


@pytest.mark.slow
def test_streamed_frames_without_feature_cache_match_the_oracle(oracle_dir, pipeline_io):
    """Long-video mode: frames go to a sink one by one and pose maps are recomputed per step."""
    data = pipeline_io["B"]  # 20 frames, two wrap-around windows
    pipe = _official_pipeline(oracle_dir)
    pipe.set_progress_bar_config(disable=True)
    received: dict[int, np.ndarray] = {}
    out = pipe(
        PIL.Image.open(oracle_dir / "pipe_ref_image.png"),
        data["pose_images"].numpy(),
        data["ref_pose_image"].numpy(),
        width=128,
        height=128,
        num_inference_steps=data["steps"],
        generator=torch.manual_seed(42),
        on_frame=lambda index, frame: received.__setitem__(index, frame),
        cache_pose_features=False,
    )
    assert out.videos is None
    assert sorted(received) == list(range(data["n_frames"]))
    assert received[0].dtype == np.uint8 and received[0].shape == (128, 128, 3)
    streamed = torch.from_numpy(np.stack([received[i] for i in range(data["n_frames"])])).float() / 255
    expected = data["video"][0].permute(1, 2, 3, 0)  # (f, H, W, 3)
    torch.testing.assert_close(streamed, expected, atol=1 / 255 + 1e-3, rtol=0)
