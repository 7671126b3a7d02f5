"""DDIM as the official inference (and training) configures it (spec §3.5)."""

from __future__ import annotations

from dataclasses import asdict

from aniportrait_lib.models.scheduler import (
    DDIMConfig,
    build_scheduler,
    inference_scheduler_config,
    training_scheduler_config,
)


def test_inference_timesteps_match_official():
    scheduler = build_scheduler()
    for steps, expected in [(3, [999, 666, 332]), (2, [999, 499])]:
        scheduler.set_timesteps(steps)
        assert scheduler.timesteps.tolist() == expected
    scheduler.set_timesteps(25)
    assert scheduler.timesteps[0] == 999 and scheduler.timesteps[-1] == 39
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.rescale_betas_zero_snr


def test_training_differs_only_in_beta_schedule():
    inference, training = asdict(inference_scheduler_config()), asdict(training_scheduler_config())
    assert {k for k in inference if inference[k] != training[k]} == {"beta_schedule"}
    assert training["beta_schedule"] == "scaled_linear"


def test_oracle_scheduler_config_equals_default(oracle_configs):
    assert DDIMConfig(**oracle_configs["scheduler"]) == inference_scheduler_config()
