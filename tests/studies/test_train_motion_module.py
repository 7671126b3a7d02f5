"""Notebook 04's library on a tiny config: a fabricated stage-1 run and a three-clip corpus on disk."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from aniportrait_lib.data.mini_corpus import ClipSpec, MiniCorpus
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import (
    SMALL_VAE_CONFIG,
    TINY_CLIP_CONFIG,
    Lmk2VideoModelConfig,
    build_stage1_networks,
    small_unet_config,
    to_video_unet,
)
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.runner.notebook import start_notebook
from aniportrait_lib.studies.train_motion_module import (
    STAGE1_ONLY,
    STAGE2,
    STAGE2_SUBFOLDER,
    VAE_FLOOR,
    MotionComparison,
    clip_audio,
    compare_on_heldout,
    export_motion_modules,
    generate_sequence,
    heldout_sequences,
    load_animatediff_motion,
    load_stage2_start,
    motion_state,
    train_motion_modules,
    training_windows,
    verify_export,
    video_pipeline,
)
from aniportrait_lib.studies.train_motion_module_report import (
    comparison_table,
    describe_comparison,
    log_motion_metrics,
    plot_flicker_over_time,
    plot_training_loss,
    write_side_by_side,
)
from aniportrait_lib.training.lmk2video_config import Stage2TrainConfig
from aniportrait_lib.video_io import probe_video, write_video
from aniportrait_lib.weights.kit_lmk2video import save_stage1_run
from aniportrait_lib.weights.lmk2video_checkpoints import load_checkpoint

SIZE, SOURCE, FRAMES, RATE = 32, 64, 14, 16000


def _model() -> Lmk2VideoModelConfig:
    return Lmk2VideoModelConfig(
        unet=small_unet_config(), vae={**SMALL_VAE_CONFIG, "sample_size": SIZE}, clip=dict(TINY_CLIP_CONFIG),
        guider="b", guider_attention_heads=2, guider_attention_head_dim=16,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding notebook 03's export of random tiny stage-1 networks (step 1)."""
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    networks = build_stage1_networks(_model())
    with torch.no_grad():  # the guider's zero-initialised output layer would hide the poses
        networks.pose_guider.final_proj.weight.normal_(0, 0.1)
    vae, encoder = build_vae(_model().vae).eval(), build_clip_image_encoder(_model().clip).eval()
    save_stage1_run(root / "03_pose_guider_study" / "stage1_b", networks, vae, encoder, _model(), 1, SIZE)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> MiniCorpus:
    """Two training clips and one held-out clip: a bright square sliding right, its 'landmarks' with it."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    base = rng.uniform(16, 48, size=(468, 2)).astype(np.float32)
    specs = []
    for index, split in enumerate(("train", "train", "heldout")):
        clip_id = f"clip{index:03d}"
        frames = np.full((FRAMES, SOURCE, SOURCE, 3), 60, np.uint8)
        lmks = np.stack([base + [t, 0.5 * index] for t in range(FRAMES)]).astype(np.float32)
        for t in range(FRAMES):
            frames[t, 20:44, 12 + t : 36 + t] = (200, 170, 140)
        write_video(root / "clips" / f"{clip_id}.mp4", frames, 30.0)
        zeros = np.zeros((FRAMES,), np.float32)
        (root / "truth").mkdir(exist_ok=True)
        np.savez(root / "truth" / f"{clip_id}.npz",
                 offsets=np.zeros((FRAMES, 468, 3), np.float32), pose=np.zeros((FRAMES, 6), np.float32),
                 jaw=zeros, spread=zeros, blink=np.zeros((FRAMES, 2), np.float32), lmks2d=lmks)  # fmt: skip
        (root / "audio").mkdir(exist_ok=True)
        sf.write(root / "audio" / f"{clip_id}.wav", np.linspace(-0.5, 0.5, FRAMES * RATE // 30), RATE)
        specs.append(ClipSpec(clip_id, "text", "en", 150, 50, split, FRAMES, FRAMES / 30))
    return MiniCorpus(root, {"image_size": SOURCE, "fps": 30.0}, specs)


def motion_study_profile(name: str, **stage2):
    """The profile's notebook-04 configs with ``stage2`` fields replaced (on a fresh copy)."""
    profile = stage_configs(name).motion
    profile.stage2 = dataclasses.replace(profile.stage2, **stage2)
    return profile


def _profile(**stage2):
    profile = motion_study_profile("quick", **{"max_steps": 2, "num_frames": 4, "checkpoint_every": 1,
                                               "uncond_ratio": 0.0, **stage2})  # fmt: skip
    profile.evaluation = dataclasses.replace(profile.evaluation, max_clips=1, num_frames=6, context_frames=4,
                                             context_overlap=1)  # fmt: skip
    profile.evaluation.sampling.num_inference_steps = 2
    return profile


@pytest.fixture(scope="module")
def start(run_folder):
    return load_stage2_start(_profile(), run_folder)


@pytest.fixture(scope="module")
def trained(start, corpus, tmp_path_factory):
    profile = _profile()
    return train_motion_modules(start, training_windows(corpus, start, profile), profile,
                                tmp_path_factory.mktemp("stage2"))  # fmt: skip


def test_profiles_keep_the_official_recipe_on_gpu_and_small_budgets_elsewhere():
    gpu, official = motion_study_profile("gpu"), Stage2TrainConfig()
    budget = {"max_steps": 300, "checkpoint_every": 300}  # the gpu notebook's hour; otherwise official
    assert gpu.stage2 == dataclasses.replace(official, **budget)
    assert (official.learning_rate, official.max_steps) == (1e-5, 40_000)
    assert (gpu.evaluation.context_frames, gpu.evaluation.context_overlap, gpu.evaluation.wrap_around) == (
        16, 4, True,
    )  # fmt: skip
    for name in ("quick", "cpu"):
        small = motion_study_profile(name)
        assert small.stage2.max_steps <= 1000 and small.stage2.cpu
        assert small.stage2.num_threads == stage_configs(name).lmk2video.evaluation.num_threads  # profile's
        assert stage_configs("quick").lmk2video.stage1.num_threads == 1  # CI machines are shared
        assert small.evaluation.context_frames == small.stage2.num_frames <= small.motion.max_seq_length
        assert small.stage2.scheduler.prediction_type == "v_prediction" and small.stage2.snr_gamma == 5.0
    assert small.evaluation.sampling == stage_configs(name).lmk2video.evaluation  # notebook 03's sampling
    assert motion_study_profile("cpu", max_steps=7).stage2.max_steps == 7
    assert motion_study_profile("cpu").stage2.max_steps != 7  # overrides work on a copy


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 03"):
        load_stage2_start(_profile(), tmp_path)
    with pytest.raises(FileNotFoundError, match=r"reference_unet\.pth.*pose_guider\.pth"):
        load_stage2_start(motion_study_profile("gpu"), tmp_path, weights_folder=tmp_path)


def test_heldout_sequences_are_consecutive_frames_with_their_speech(corpus, start):
    evaluation = _profile().evaluation
    held = heldout_sequences(corpus, SIZE, None, evaluation)
    (clip,) = held.clips
    assert held.source is corpus and held.description == "1 held-out clip(s) of the mini corpus"
    assert clip.clip_id == "clip002" and list(clip.frame_indices) == [1, 2, 3, 4, 5, 6]
    assert clip.frames.shape == (6, SIZE, SIZE, 3) and clip.poses.shape == (6, SIZE, SIZE, 3)
    assert np.allclose(np.diff(clip.lmks2d[:, 0, 0]), 0.5)  # one source pixel per frame, at half size
    samples, rate = clip_audio(corpus, clip, 30.0)
    assert rate == RATE and len(samples) == 6 * RATE // 30
    with pytest.raises(ValueError, match="need 31"):
        heldout_sequences(corpus, SIZE, None, dataclasses.replace(evaluation, num_frames=30))


def test_stage1_only_is_frame_by_frame_and_trained_motion_modules_are_not(start, corpus, trained):
    profile = _profile()
    (clip,) = heldout_sequences(corpus, SIZE, None, profile.evaluation).clips
    wide = profile.evaluation
    narrow = dataclasses.replace(wide, context_frames=2, context_overlap=0)
    stage1 = video_pipeline(start, None, profile)
    per_frame = generate_sequence(stage1, clip, wide).astype(int)
    narrow_windows = generate_sequence(stage1, clip, narrow).astype(int)
    assert np.abs(per_frame - narrow_windows).max() <= 1  # float rounding of other batch sizes only
    state = motion_state(trained.networks)
    assert any(v.abs().sum() > 0 for k, v in state.items() if k.endswith("proj_out.weight"))
    stage2 = video_pipeline(start, state, profile)
    video = generate_sequence(stage2, clip, wide).astype(int)
    assert np.abs(video - per_frame).mean() > 1  # measured 8.3 grey levels after two steps


def test_training_resumes_exactly(start, corpus, trained, tmp_path):
    profile = _profile()
    dataset = training_windows(corpus, start, profile)
    assert dataset.num_frames == 4 and trained.step == 2 and len(trained.losses) == 2 and trained.seconds > 0
    first = train_motion_modules(start, dataset, _profile(max_steps=1), tmp_path)
    resumed = train_motion_modules(start, dataset, profile, tmp_path)  # continues from checkpoint 1
    assert first.step == 1 and resumed.step == 2 and len(resumed.losses) == 2
    assert resumed.losses[0] == first.losses[0] and resumed.losses == pytest.approx(trained.losses)
    a, b = motion_state(resumed.networks), motion_state(trained.networks)
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_export_lands_where_inference_looks_and_loads_back_identically(start, trained, run_folder):
    profile = _profile()
    path = export_motion_modules(trained, start, run_folder, profile)
    assert path == run_folder / STAGE2_SUBFOLDER / "motion_module-2.pth"
    saved = json.loads((path.parent / "config.json").read_text())
    assert saved["denoising_unet"].endswith("stage1_b/denoising_unet-1.pth") and saved["step"] == 2
    assert saved["evaluation"]["context_frames"] == 4
    assert verify_export(path, start, trained, profile) == 0.0
    state = load_checkpoint(path)
    key = next(k for k in state if k.endswith("proj_out.weight"))
    state[key] = state[key] + 1e-3
    broken = path.with_name("motion_module-99.pth")
    torch.save(state, broken)
    with pytest.raises(ValueError, match="differs from the trained networks"):
        verify_export(broken, start, trained, profile)


def test_motion_modules_load_from_an_animatediff_style_file(start, trained, run_folder, tmp_path):
    path = export_motion_modules(trained, start, run_folder, _profile())
    fresh = to_video_unet(start.run.networks.denoising_unet, start.run.model.unet)
    load_animatediff_motion(fresh, path)
    expected = motion_state(trained.networks)
    got = {k: v for k, v in fresh.state_dict().items() if "motion_modules" in k}
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    partial = dict(list(load_checkpoint(path).items())[:5])
    torch.save(partial, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="not the motion modules"):
        load_animatediff_motion(fresh, tmp_path / "partial.ckpt")


def test_comparison_table_verdict_metrics_and_video(start, corpus, trained, tmp_path):
    profile = _profile()
    clips = heldout_sequences(corpus, SIZE, None, profile.evaluation).clips
    comparison = compare_on_heldout(start, trained.networks, clips, None, profile)
    table = comparison_table(comparison)
    assert list(table.index) == [VAE_FLOOR, STAGE1_ONLY, STAGE2] and table.attrs == {"clips": 1, "frames": 6}
    assert table.loc[VAE_FLOOR, "flicker_frame"] < table.loc[STAGE1_ONLY, "flicker_frame"]
    assert comparison.flicker[STAGE2]["clip002"].shape == (5,)
    text = describe_comparison(comparison)
    assert text.startswith("**Stage 2 ") and "not measurable" in text  # no extractor: no jitter
    run = start_notebook("04_train_motion_module", "quick", tmp_path)
    logged = log_motion_metrics(run, comparison, trained)
    assert logged["jitter_stage2"] == SIZE and logged["training_seconds"] == pytest.approx(trained.seconds)
    assert logged["mouth_corr_stage2"] == 0.0  # no extractor: the mouth cannot be followed
    assert logged["flicker_stage2"] == pytest.approx(table.loc[STAGE2, "flicker_frame"])
    video = write_side_by_side(
        tmp_path / "side.mp4", clips[0], comparison, 30.0, clip_audio(corpus, clips[0], 30)
    )
    info = probe_video(video)
    assert (info.num_frames, info.width, info.audio_sample_rate) == (6, 3 * 256, RATE)
    assert plot_training_loss(trained).axes and plot_flicker_over_time(comparison, clips).axes


def _fake(stage1: list[float], stage2: list[float], mouth: dict | None = None) -> MotionComparison:
    """Rows of a comparison with these flickers; ``mouth`` maps a method to its (mouth_corr, ratio)."""
    rows = []
    for method, values in ((VAE_FLOOR, [0.5] * len(stage1)), (STAGE1_ONLY, stage1), (STAGE2, stage2)):
        corr, ratio = (mouth or {}).get(method, (np.nan, np.nan))
        for index, value in enumerate(values):
            rows.append({"method": method, "clip_id": f"c{index}", "flicker_frame": value,
                         "flicker_mouth": value, **dict.fromkeys(
                             ["flicker_face", "energy_ratio_frame", "psnr", "mouth_psnr", "ssim"], 1.0),
                         "jitter_px": np.nan, "landmark_px": np.nan, "no_face_fraction": 1.0,
                         "mouth_corr": corr, "mouth_motion_ratio": ratio})  # fmt: skip
    return MotionComparison(rows, {}, {}, {}, 8)


def test_the_description_reads_a_damped_mouth():
    mouth = {VAE_FLOOR: (0.95, 0.9), STAGE1_ONLY: (0.85, 0.8), STAGE2: (0.6, 0.5)}
    text = describe_comparison(_fake([4.0, 5.0], [3.0, 4.5], mouth))
    assert "correlation 0.85 → 0.60 and 0.80 → 0.50 of its motion (VAE: 0.95, 0.90)" in text
    assert "inner-lip" not in describe_comparison(_fake([4.0, 5.0], [3.0, 4.5]))  # not measurable: silent


@pytest.mark.parametrize(
    ("stage1", "stage2", "verdict"),
    [
        ([4.0, 5.0], [3.0, 4.5], "reduces"),
        ([4.0, 5.0], [3.0, 5.5], "does not measurably change"),  # one clip got worse
        ([4.0, 5.0], [3.95, 4.95], "does not measurably change"),  # −1 %: below 3 %
        ([4.0, 5.0], [4.5, 5.5], "increases"),
    ],
)
def test_the_verdict_needs_a_consistent_change_of_at_least_three_percent(stage1, stage2, verdict):
    text = describe_comparison(_fake(stage1, stage2))
    assert text.startswith(f"**Stage 2 {verdict} flicker**"), text
