"""Lmk2Video training on a tiny config: exact resume, learning, stage 2 (the tiny setup: tests/conftest.py
TinyStage1; the kit's export format is tested in tests/weights/test_kit_lmk2video.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.models.image_models import build_vae
from aniportrait_lib.models.lmk2video import (
    build_stage1_networks,
    build_stage2_networks,
    small_unet_config,
    to_video_unet,
)
from aniportrait_lib.training.checkpoint import latest_checkpoint
from aniportrait_lib.training.lmk2video import Stage1Trainer
from aniportrait_lib.training.optim import min_snr_weights
from aniportrait_lib.weights.kit_lmk2video import export_stage2


def test_dataset_is_deterministic_and_pairs_come_from_one_clip(tiny_stage1):
    dataset, size = tiny_stage1.dataset, tiny_stage1.size
    assert dataset.sample_of(7) == dataset.sample_of(7)
    clip, target, ref = dataset.sample_of(3)
    assert 0 <= target < 5 and 0 <= ref < 5 and clip in (0, 1)
    batch = dataset.batch(range(2))
    assert batch["pixel_values"].shape == (2, 3, size, size) and batch["clip_pixels"].shape == (
        2,
        3,
        224,
        224,
    )
    assert batch["pose"].min() >= -1 and batch["pose"].max() <= 1 and batch["pose"].max() > -1


def test_min_snr_weights_follow_the_official_formula():
    from aniportrait_lib.models.scheduler import build_scheduler, training_scheduler_config

    scheduler = build_scheduler(training_scheduler_config())
    t = torch.tensor([0, 500, 999])
    weights = min_snr_weights(scheduler, t, 5.0)
    snr = scheduler.alphas_cumprod[t] / (1 - scheduler.alphas_cumprod[t]) + 1
    assert torch.allclose(weights, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert weights[2] == pytest.approx(1.0)  # zero terminal SNR: SNR+1 = 1


def test_kill_and_resume_reproduces_the_uninterrupted_run(tiny_stage1, tmp_path):
    straight = tiny_stage1.trainer(tmp_path / "straight")
    straight.train()
    interrupted = tiny_stage1.trainer(tmp_path / "resumed")
    interrupted.train(stop_after=4)  # checkpoint at step 3, then one step that is "lost" in the kill
    del interrupted
    torch.manual_seed(1234)  # a new process has other RNG states and other initial weights
    resumed = tiny_stage1.trainer(tmp_path / "resumed", seed=99)
    assert resumed.resume() and resumed.step == 3
    resumed.train()
    assert resumed.step == straight.step == 6
    a, b = straight.unwrapped.state_dict(), resumed.unwrapped.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert latest_checkpoint(tmp_path / "resumed").name == "checkpoint-00000006.pt"
    assert not torch.equal(
        a["pose_guider.final_proj.weight"], torch.zeros_like(a["pose_guider.final_proj.weight"])
    )


def test_resume_refuses_a_checkpoint_trained_against_another_vae(tiny_stage1, tmp_path):
    first = tiny_stage1.trainer(tmp_path, tiny_stage1.config(max_steps=3))
    first.train()
    _, encoder = tiny_stage1.frozen
    torch.manual_seed(5)
    retrained_vae = build_vae(tiny_stage1.model().vae).eval()  # e.g. the VAE pre-trained again, for longer
    networks = build_stage1_networks(tiny_stage1.model())
    other = Stage1Trainer(
        networks, retrained_vae, encoder, tiny_stage1.dataset, tiny_stage1.config(), tmp_path
    )
    before = {k: v.clone() for k, v in other.unwrapped.state_dict().items()}
    with pytest.raises(ValueError, match=r"other fixed models \(VAE, image encoder\).*delete"):
        other.resume()
    assert other.step == 0 and all(torch.equal(v, other.unwrapped.state_dict()[k]) for k, v in before.items())
    again = tiny_stage1.trainer(tmp_path, tiny_stage1.config(max_steps=3))
    assert again.resume() and again.step == 3  # the same models: continues


def test_state_signature_tells_models_apart_up_to_float_noise():
    from aniportrait_lib.training.checkpoint import same_signature, state_signature

    torch.manual_seed(0)
    state = {"a": torch.randn(64, 32), "b": torch.randn(16), "zero": torch.zeros(4)}
    signature = state_signature(state)
    reordered = state_signature({k: state[k].clone() for k in reversed(list(state))})
    assert same_signature(reordered, signature)
    noisy = {**state, "a": state["a"] * (1 + 1e-7 * torch.randn(64, 32))}  # last-bits differences
    assert same_signature(state_signature(noisy), signature)
    for other in (
        {**state, "a": state["a"] + 0.01 * torch.randn(64, 32)},  # trained further
        {**state, "b": torch.randn(16)},  # another initialisation
        {**state, "a": state["a"].double()},  # another dtype
        {**state, "a": state["a"].reshape(32, 64)},  # another shape
        {"c": state["a"], "b": state["b"], "zero": state["zero"]},  # another name
    ):
        assert not same_signature(state_signature(other), signature)


def test_frozen_reference_up_block_stays_and_the_rest_trains(tiny_stage1, tmp_path):
    trainer = tiny_stage1.trainer(tmp_path, tiny_stage1.config(max_steps=2, uncond_ratio=0.0))
    before = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.train()
    after = trainer.unwrapped.state_dict()
    frozen_keys = [k for k in before if k.startswith("reference_unet.up_blocks.3.")]
    assert frozen_keys and all(torch.equal(before[k], after[k]) for k in frozen_keys)
    assert not torch.equal(before["reference_unet.conv_in.weight"], after["reference_unet.conv_in.weight"])
    assert not torch.equal(before["denoising_unet.conv_out.weight"], after["denoising_unet.conv_out.weight"])


def test_loss_decreases_over_a_few_dozen_steps(tiny_stage1, tmp_path):
    config = tiny_stage1.config(max_steps=40, checkpoint_every=1000, uncond_ratio=0.1, noise_offset=0.0)
    trainer = tiny_stage1.trainer(tmp_path, config)
    dataset = tiny_stage1.dataset

    def held_loss() -> float:  # the same batches, noise, timesteps and drops every time
        with torch.no_grad():
            return float(
                np.mean(
                    [trainer.loss(dataset.batch(range(2 * k, 2 * k + 2)), trainer.draws(k)) for k in range(6)]
                )
            )

    before = held_loss()
    trainer.train()
    after = held_loss()
    assert after < 0.85 * before, (before, after)  # deterministic: measured 0.357 → 0.272


def test_stage2_trains_only_motion_modules_and_exports_officially(tiny_stage1, tmp_path):
    from aniportrait_lib.training.lmk2video_config import Stage2TrainConfig
    from aniportrait_lib.training.lmk2video_data import ClipWindowDataset
    from aniportrait_lib.training.lmk2video_stage2 import Stage2Trainer
    from aniportrait_lib.weights.lmk2video_checkpoints import load_checkpoint, load_official_denoising_unet

    dataset, size, frozen = tiny_stage1.dataset, tiny_stage1.size, tiny_stage1.frozen
    clips = ClipWindowDataset(dataset.source, seed=2, num_frames=4, strides=(1, 4))
    clip, indices, _ = clips.window_of(5)
    assert len(indices) == 4 and indices[-1] < 5 and np.all(np.diff(indices) == indices[1] - indices[0])
    assert clips[0]["pixel_values"].shape == (3, 4, size, size)
    stage1 = build_stage1_networks(tiny_stage1.model())
    networks = build_stage2_networks(stage1, small_unet_config())
    config = Stage2TrainConfig(**{**dataclasses.asdict(tiny_stage1.config()), "batch_size": 1, "max_steps": 2,
                                  "gradient_checkpointing": False, "num_frames": 4})  # fmt: skip
    config.scheduler = tiny_stage1.config().scheduler
    trainer = Stage2Trainer(networks, *frozen, clips, config, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.train()
    after = trainer.unwrapped.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("motion_modules" in k for k in changed)
    path = export_stage2(trainer.unwrapped, tmp_path / "export", trainer.step)
    assert path.name == "motion_module-2.pth" and any(
        "temporal_transformer" in k for k in load_checkpoint(path)
    )
    fresh = to_video_unet(stage1.denoising_unet, small_unet_config())
    spatial = {k: v for k, v in stage1.denoising_unet.state_dict().items()}
    load_official_denoising_unet(fresh, spatial, load_checkpoint(path))
    denoiser = trainer.unwrapped.denoising_unet.state_dict()
    assert all(torch.equal(v, denoiser[k]) for k, v in fresh.state_dict().items())
    retrained = build_stage1_networks(tiny_stage1.model())  # another stage-1 model: the modules do not fit it
    with torch.no_grad():
        retrained.pose_guider.final_proj.weight.add_(0.1)
    other = Stage2Trainer(build_stage2_networks(retrained, small_unet_config()), *frozen, clips, config,
                          tmp_path / "run")  # fmt: skip
    with pytest.raises(ValueError, match="stage-1 networks"):
        other.resume()


def test_mouth_weighted_loss_weighs_each_targets_lips(tiny_stage1, tmp_path):
    from aniportrait_lib.landmarks.mouth import LIP_VERTICES
    from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, mouth_weight_map

    dataset, size, latent = tiny_stage1.dataset, tiny_stage1.size, tiny_stage1.latent
    trainer = tiny_stage1.trainer(tmp_path / "weighted", tiny_stage1.config(mouth_weight=4.0))
    plain = tiny_stage1.trainer(tmp_path / "plain")
    batch = dataset.batch(range(2))
    side = size // 8
    weights = trainer.mouth_weights(batch, torch.Size((2, latent, side, side)))
    assert weights.shape == (2, 1, side, side) and weights.min() >= 1.0 and weights.max() > 2.0
    for sample, lmks in zip(weights, batch["lmks"].numpy(), strict=True):  # heaviest latent pixel: lips
        centre = lmks[list(LIP_VERTICES)].mean(axis=0) * side
        row, col = divmod(int(sample[0].argmax()), side)
        assert abs(col + 0.5 - centre[0]) <= 1.0 and abs(row + 0.5 - centre[1]) <= 1.0

    clips = ClipWindowDataset(dataset.source, seed=2, num_frames=3, strides=(1,))
    clip_batch = clips.batch([0])
    per_frame = trainer.mouth_weights(clip_batch, torch.Size((1, latent, 3, side, side)))
    assert per_frame.shape == (1, 1, 3, side, side)
    for f in range(3):  # frame f weighted by frame f's own lips
        expected = mouth_weight_map(clip_batch["lmks"][0, f : f + 1].numpy(), side, 4.0)[0, 0]
        assert torch.equal(per_frame[0, 0, f], expected)

    torch.manual_seed(5)
    weighted_loss = trainer.loss(batch)
    torch.manual_seed(5)
    assert not torch.isclose(weighted_loss, plain.loss(batch))  # same noise, t and weights, other mean
    with pytest.raises(ValueError, match="landmarks"):
        trainer.loss({k: v for k, v in batch.items() if k != "lmks"})


def test_gpu_profile_carries_the_official_recipe():
    from aniportrait_lib.profiles import stage_configs
    from aniportrait_lib.studies.pose_guider_study import prepare_frozen_models
    from aniportrait_lib.training.lmk2video_config import Stage2TrainConfig

    gpu = stage_configs("gpu").lmk2video.stage1
    assert (gpu.learning_rate, gpu.batch_size, gpu.seed, gpu.image_size) == (1e-5, 2, 12580, 512)
    assert (gpu.noise_offset, gpu.snr_gamma, gpu.uncond_ratio, gpu.max_grad_norm) == (0.05, 5.0, 0.1, 1.0)
    assert gpu.scheduler.beta_schedule == "scaled_linear" and gpu.scheduler.prediction_type == "v_prediction"
    assert gpu.scheduler.rescale_betas_zero_snr and gpu.scheduler.timestep_spacing == "trailing"
    assert gpu.reference_frozen == ("up_blocks.3",) and gpu.reference_timestep == 0
    stage2 = Stage2TrainConfig()
    assert (stage2.batch_size, stage2.max_steps, stage2.num_frames, stage2.gradient_checkpointing) == (
        1, 40_000, 16, True,
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match="sd-vae-ft-mse"):  # an empty weights folder
        prepare_frozen_models(None, stage_configs("gpu").lmk2video, weights_folder=Path("/nonexistent"))


def test_both_unets_start_from_a_pretrained_unet_folder(tiny_stage1, tmp_path):
    torch.manual_seed(5)
    pretrained = build_stage1_networks(tiny_stage1.model()).denoising_unet
    pretrained.save_pretrained(tmp_path / "unet")
    networks = build_stage1_networks(tiny_stage1.model(), tmp_path / "unet")
    expected = pretrained.state_dict()
    for unet in (networks.reference_unet, networks.denoising_unet):
        assert all(torch.equal(v, expected[k]) for k, v in unet.state_dict().items())
    other = tiny_stage1.model()
    other.unet = small_unet_config(widths=(32, 64, 128, 256))
    with pytest.raises(ValueError, match="does not fit the configured UNet"):
        build_stage1_networks(other, tmp_path / "unet")
    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy
    with pytest.raises(ValueError, match=f"^{weights}: cannot load the SD1.5 UNet: truncated"):
        build_stage1_networks(tiny_stage1.model(), tmp_path / "unet")


def test_learning_rate_warms_up_stays_constant_and_decays_over_the_last_steps(tiny_stage1):
    from aniportrait_lib.training.optim import lr_factor

    constant = tiny_stage1.config(max_steps=10, lr_warmup_steps=2)
    assert [lr_factor(k, constant) for k in range(4)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_factor(9, constant) == 1.0  # official: constant to the end
    decaying = tiny_stage1.config(max_steps=10, lr_warmup_steps=2, lr_decay_steps=4)
    assert [lr_factor(k, decaying) for k in range(5, 10)] == [1.0, 1.0, 0.75, 0.5, 0.25]


def test_both_unets_start_from_the_same_weights(tiny_stage1):
    networks = build_stage1_networks(tiny_stage1.model())
    reference, denoiser = networks.reference_unet.state_dict(), networks.denoising_unet.state_dict()
    assert reference and all(torch.equal(v, denoiser[k]) for k, v in reference.items())
    assert set(denoiser) - set(reference) == {"conv_norm_out.weight", "conv_norm_out.bias",
                                              "conv_out.weight", "conv_out.bias"}  # fmt: skip


def test_final_model_continues_the_study_run_exactly_and_leaves_it_untouched(tiny_stage1, tmp_path):
    from aniportrait_lib.studies.configs import Lmk2VideoEvalConfig, Lmk2VideoProfile
    from aniportrait_lib.studies.pose_guider_study import (
        FINAL_MODEL,
        FrozenModels,
        GuiderStudy,
        train_final_model,
    )
    from aniportrait_lib.training.lmk2video_config import VaePretrainConfig
    from aniportrait_lib.training.lmk2video_data import EvalClip

    dataset, size, frozen = tiny_stage1.dataset, tiny_stage1.size, tiny_stage1.frozen
    profile = Lmk2VideoProfile(
        "tiny", tiny_stage1.model(), VaePretrainConfig(), tiny_stage1.config(max_steps=3),
        Lmk2VideoEvalConfig(num_inference_steps=2, guidance_scale=1.0, num_threads=1), final_steps=6,
    )  # fmt: skip
    frames, lmks = dataset.source.frames(0, [0, 1]), dataset.source.landmarks(0, [0, 1])
    poses = np.stack([draw_landmarks((size, size), lm, normed=True) for lm in lmks])
    clip = EvalClip("held", frames[0], poses[0], np.arange(2), frames, poses, lmks * size)
    study = GuiderStudy([], {}, {"b": [1.0, 1.0, 1.0]}, {"b": 1.0}, {})
    runs = tmp_path / "runs"
    tiny_stage1.trainer(runs / "guider_b", tiny_stage1.config(max_steps=3)).train()  # the study's run
    before = sorted(p.name for p in (runs / "guider_b").iterdir())
    frozen_models = FrozenModels(*frozen, [], 1.0, 0.0)
    assert train_final_model(study, profile, dataset, frozen_models, [clip], None, runs) == 6
    assert sorted(p.name for p in (runs / "guider_b").iterdir()) == before
    straight = tiny_stage1.trainer(tmp_path / "straight", tiny_stage1.config(max_steps=6))
    straight.train()
    a, b = straight.unwrapped.state_dict(), study.networks["final"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(study.losses["final"]) == 6 and study.generated[FINAL_MODEL]["held"].shape == (
        2,
        size,
        size,
        3,
    )
    assert [row["method"] for row in study.rows] == [FINAL_MODEL]


def test_study_runs_in_a_second_process_give_the_same_weights(tiny_stage1, tmp_path, monkeypatch):
    """study_processes=2: guider (a) trains in a spawned process while (b) and its longer run train here;
    every run ends with the weights, losses and logs of the same runs trained one after the other."""
    from dataclasses import replace

    from aniportrait_lib.studies import pose_guider_study
    from aniportrait_lib.studies.configs import Lmk2VideoEvalConfig, Lmk2VideoProfile
    from aniportrait_lib.studies.pose_guider_study import (
        FrozenModels,
        run_guider_study,
        train_final_model,
    )
    from aniportrait_lib.training.lmk2video_config import VaePretrainConfig
    from aniportrait_lib.training.loss_log import read_loss_log

    started = []
    real_start = pose_guider_study.start_background_runs

    def spy(kinds, *args):
        started.append(kinds)
        return real_start(kinds, *args)

    monkeypatch.setattr(pose_guider_study, "start_background_runs", spy)

    frozen = FrozenModels(*tiny_stage1.frozen, [], 1.0, 0.0)
    serial = Lmk2VideoProfile(
        "tiny", tiny_stage1.model(), VaePretrainConfig(), tiny_stage1.config(max_steps=3),
        Lmk2VideoEvalConfig(num_inference_steps=2, guidance_scale=1.0, num_threads=1), final_steps=5,
    )  # fmt: skip
    results = {}
    for processes in (1, 2):
        runs = tmp_path / f"processes{processes}"
        profile = replace(serial, study_processes=processes)
        study = run_guider_study("ab", profile, tiny_stage1.dataset, frozen, [], None, runs)
        assert train_final_model(study, profile, tiny_stage1.dataset, frozen, [], None, runs) == 5
        results[processes] = study, runs
    assert started == ["a"]  # only with 2 processes: (a) in the second one
    (one, runs1), (two, runs2) = results[1], results[2]
    for key in ("a", "b", "final"):
        a, b = one.networks[key].state_dict(), two.networks[key].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), key
        assert np.allclose(one.losses[key], two.losses[key], rtol=1e-5), key
    for run in ("guider_a", "guider_b", "final_b"):
        assert np.array_equal(read_loss_log(runs1 / run / "log.csv").steps,
                              read_loss_log(runs2 / run / "log.csv").steps)  # fmt: skip
    assert len(two.losses["final"]) == 5 and len(two.losses["a"]) == 3
