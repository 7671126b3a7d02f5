"""The hardware check: measured calibration → memory/time estimates → a verdict naming settings that fit."""

import dataclasses

import pytest

from aniportrait_lib.config import GenerateConfig
from aniportrait_lib.pipelines import plan as planning
from aniportrait_lib.pipelines.plan import Calibration, PhaseFit, estimate, fitting_settings


def _calibration(**changes) -> Calibration:
    base = Calibration(
        device="cpu", dtype="float32", window_frames=4, branches=2, loaded_host_mib=10_600.0,
        loaded_device_mib=0.0, denoise_mib=PhaseFit(100.0, 0.05), decode_mib=PhaseFit(0.0, 0.006),
        seconds_per_pass=PhaseFit(0.1, 0.001),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_a_phase_fit_goes_through_both_points_and_never_below_zero():
    fit = PhaseFit.through(64, 10.0, 256, 30.0)
    assert (
        fit(64) == pytest.approx(10.0) and fit(256) == pytest.approx(30.0) and fit(1024) == pytest.approx(110)
    )
    assert (
        PhaseFit.through(64, 30.0, 256, 10.0).slope == 0.0
    )  # noise that falls with size: flat, not negative


def test_estimate_adds_the_larger_phase_to_the_weights_and_times_every_window():
    config = GenerateConfig(width=512, height=512, steps=25, guidance_scale=3.5)
    plan = estimate(_calibration(), config, frames=40, available=(64_000.0, None))
    denoise = 100.0 + 0.05 * (16 * 2 * 64 * 64)  # one 16-frame window, both guidance branches, 64×64 tokens
    assert plan.host_peak_mib == pytest.approx(10_600.0 + denoise) and plan.device_peak_mib is None
    passes = (16 + 16 + 16) * 2  # 40 frames in wrap-around-free windows of 16 with overlap 4: 3 windows
    assert plan.seconds_per_step == pytest.approx((0.1 + 0.001 * 4096) * passes)
    assert plan.seconds_denoising == pytest.approx(plan.seconds_per_step * 25) and plan.fits
    unguided = estimate(_calibration(), dataclasses.replace(config, guidance_scale=1.0), 40, (64_000.0, None))
    assert unguided.host_peak_mib < plan.host_peak_mib and unguided.seconds_per_step == pytest.approx(
        plan.seconds_per_step / 2
    )


def test_a_gpu_plan_counts_the_device_and_keeps_the_host_at_its_loaded_size():
    cal = _calibration(device="cuda:0", dtype="float16", loaded_host_mib=3_000.0, loaded_device_mib=5_500.0)
    plan = estimate(cal, GenerateConfig(), frames=16, available=(16_000.0, 8_000.0))
    assert plan.host_peak_mib == 3_000.0 and plan.device_peak_mib > 5_500.0
    assert not plan.fits and "peak device memory" in dict(plan.table())


def test_what_does_not_fit_names_the_nearest_setting_that_does():
    config = GenerateConfig(width=512, height=512)
    too_small = (12_000.0, None)  # weights 10.6 GB + 6.6 GB of activations at 512² do not fit in 12 GB
    assert not estimate(_calibration(), config, 16, too_small).fits
    fitting = fitting_settings(_calibration(), config, 16, too_small)
    assert fitting is not None and fitting.fits
    assert fitting.settings() == "--size 512x512 --dtype bf16 --context-frames 16"  # half precision first
    tight = (8_000.0, None)
    smaller = fitting_settings(_calibration(dtype="bfloat16", loaded_host_mib=5_900.0), config, 16, tight)
    assert smaller is not None and smaller.config.width < 512 and smaller.dtype == "bfloat16"
    assert fitting_settings(_calibration(), config, 16, (1_000.0, None)) is None


def test_calibration_measures_a_real_pipeline(oracle_dir):
    """Runs: the warm-up and two timed calls on the tiny oracle pipeline give a usable fit."""
    from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
    from aniportrait_lib.weights.components import load_oracle_components

    pipeline = Pose2VideoPipeline.from_components(load_oracle_components(oracle_dir))
    pipeline.set_progress_bar_config(disable=True)
    original = pipeline.scheduler.step
    cal = planning.calibrate(pipeline, window_frames=16, guidance_scale=3.5)
    assert pipeline.scheduler.step == original  # the timing wrapper is gone again
    assert cal.window_frames == planning.CALIBRATION_FRAMES and cal.branches == 2
    assert cal.loaded_host_mib > 0 and cal.seconds_per_pass(64) > 0
    plan = estimate(cal, GenerateConfig(width=128, height=128, steps=2), frames=8)
    assert plan.host_peak_mib >= cal.loaded_host_mib and plan.seconds_per_step > 0
