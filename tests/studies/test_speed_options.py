"""Notebook 05's speed options: the table on tiny random models, DPM-Solver++ and autocast from outside the
pipeline, and the full setting (and the pipeline afterwards) unchanged."""

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDIMScheduler

from aniportrait_lib.evaluation.generation_eval import heldout_truth, mean_psnr
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.pipelines.generate import audio_to_video
from aniportrait_lib.pipelines.selection import resolve_weights
from aniportrait_lib.studies.speed_options import (
    SpeedStudyConfig,
    default_speed_options,
    dpm_solver_scheduler,
    fast_sampling,
    measure_speed_options,
    plot_speed_options,
)
from aniportrait_lib.video_io import probe_video

pytestmark = pytest.mark.usefixtures("one_thread")


def _call(pipe, frames: int = 5, steps: int = 3) -> torch.Tensor:
    import PIL.Image

    rng = np.random.default_rng(0)
    ref = PIL.Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    poses = rng.integers(0, 2, (frames, 64, 64, 3), dtype=np.uint8) * 255
    return pipe(ref, poses, None, 64, 64, num_inference_steps=steps, guidance_scale=1.0,
                generator=torch.manual_seed(42), context_frames=4, context_overlap=2,
                wrap_around=False).videos  # fmt: skip


@pytest.fixture(scope="module")
def plain(tiny_pose2video_pipeline):
    return _call(tiny_pose2video_pipeline)


def test_dpm_solver_keeps_the_noise_schedule_and_renders_a_video(tiny_pose2video_pipeline, plain):
    pipe = tiny_pose2video_pipeline
    dpm = dpm_solver_scheduler(pipe.scheduler)
    assert dpm.config.prediction_type == "v_prediction" and dpm.config.rescale_betas_zero_snr
    dpm.set_timesteps(10)
    pipe.scheduler.set_timesteps(10)
    assert torch.equal(dpm.timesteps, pipe.scheduler.timesteps)  # trailing: 999, 899, …, 99
    with fast_sampling(pipe, scheduler="dpm++"):
        video = _call(pipe)
    assert video.shape == (1, 3, 5, 64, 64) and torch.isfinite(video).all()
    assert not torch.equal(video, plain)
    assert isinstance(pipe.scheduler, DDIMScheduler)  # given back


def test_bf16_autocast_is_close_to_float32_but_not_equal(tiny_pose2video_pipeline, plain):
    with fast_sampling(tiny_pose2video_pipeline, autocast="bf16"):
        video = _call(tiny_pose2video_pipeline)
    difference = (video - plain).abs()
    assert difference.max() > 0
    assert difference.mean() < 0.02, f"bf16 moved the frames by {difference.mean():.4f} on average"
    assert "predict" not in vars(tiny_pose2video_pipeline)  # the class's method again


def test_no_option_and_every_option_afterwards_leave_the_default_path_bit_identical(
    tiny_pose2video_pipeline, plain
):
    with fast_sampling(tiny_pose2video_pipeline):
        assert torch.equal(_call(tiny_pose2video_pipeline), plain)
    with pytest.raises(RuntimeError), fast_sampling(tiny_pose2video_pipeline, "bf16", "dpm++"):
        raise RuntimeError("a failed render")
    assert torch.equal(_call(tiny_pose2video_pipeline), plain)
    with (
        pytest.raises(ValueError, match="unknown scheduler"),
        fast_sampling(tiny_pose2video_pipeline, None, "x"),
    ):
        pass


def test_default_options_name_every_fast_setting():
    names = [option.name for option in default_speed_options(20, 2)]
    assert names == [
        "full", "bf16 autocast", "fp16 autocast", "DPM-Solver++ 10 steps", "DDIM 10 steps",
        "overlap 0 (of 2)", "-acc: every 2nd frame + flow", "bf16 + DPM-Solver++ 10 + -acc",
    ]  # fmt: skip
    assert [o.name for o in default_speed_options(25, 0, 12)][3:6] == [
        "DPM-Solver++ 12 steps", "DDIM 12 steps", "-acc: every 2nd frame + flow"
    ]  # fmt: skip


@pytest.mark.slow
def test_table_has_a_row_per_option_and_the_full_row_is_the_default_call(
    tiny_kit_run, two_clip_corpus, tmp_path
):
    models = resolve_weights(f"kit:{tiny_kit_run}")
    models = replace(models, config=replace(models.config, steps=2, context_frames=3, context_overlap=1))
    models.pipeline.set_progress_bar_config(disable=True)
    clip = two_clip_corpus.split("heldout")[0].clip_id
    truth = heldout_truth(two_clip_corpus, clip, models.config.width, models.config.face_crop_scale)
    reference = two_clip_corpus.reference().image
    extractor = LandmarkExtractor()
    study = SpeedStudyConfig(frames=4, warmup_steps=1)
    table = measure_speed_options(models, reference, truth, tmp_path, extractor, study)
    extractor.close()
    assert list(table.index) == [o.name for o in default_speed_options(2, 1)]
    measured = table.drop(index="fp16 autocast")
    assert np.isfinite(measured[["seconds", "speed-up", "denoising seconds"]].to_numpy(float)).all()
    skipped = table.loc["fp16 autocast"]
    assert skipped["note"] == "skipped: no CUDA" and np.isnan(skipped["seconds"])
    assert table.loc["full", "PSNR vs full (dB)"] == np.inf and table.loc["full", "speed-up"] == 1
    assert np.isfinite(measured["PSNR vs full (dB)"].drop(index="full").to_numpy(float)).all()
    assert not list(tmp_path.glob("speed_warm_up*"))
    plain = audio_to_video(reference, truth.audio_path, out_path=tmp_path / "plain.mp4", weights=models,
                           config=replace(models.config, max_frames=4), pose_template=truth.pose)  # fmt: skip
    # the same frames as a default call; the mp4s are compared with a bound, not bit for bit, since the H.264
    # encoder's output is not always identical for identical frames (the pipeline's is: tests above)
    assert probe_video(table.loc["full", "video"]).num_frames == 4
    assert mean_psnr(table.loc["full", "video"], plain) > 35
    assert isinstance(models.pipeline.scheduler, DDIMScheduler) and "predict" not in vars(models.pipeline)


def test_plot_leaves_out_skipped_rows_and_marks_unmeasurable_mouths():
    table = pd.DataFrame(
        {
            "seconds": [3.0, np.nan, 1.5],
            "PSNR vs full (dB)": [np.inf, np.nan, 30.0],
            "mouth corr": [0.6, np.nan, np.nan],
        },
        index=["full", "fp16 autocast", "fast"],
    )
    fig = plot_speed_options(table)
    time_ax, mouth_ax = fig.axes
    assert [t.get_text() for t in time_ax.texts] == ["full", "fast"]
    assert [t.get_text() for t in mouth_ax.texts] == [" not measurable (no face, or a still mouth)"]
    plt.close(fig)
