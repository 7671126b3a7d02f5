"""Weights selection: spec parsing, kit run folders (complete, incomplete, with a stage-2 export) and official
folders (incomplete, and the oracle written in the official layout)."""

import json
import shutil

import numpy as np
import pytest
import torch

from aniportrait_lib.models.components import _oracle_guider_config
from aniportrait_lib.models.scheduler import DDIMConfig
from aniportrait_lib.paths import DATA_SAMPLES, weights_dir
from aniportrait_lib.pipelines.generate import GenerateConfig, audio_to_video, pose_to_video
from aniportrait_lib.training.lmk2video_config import lmk2video_profile
from aniportrait_lib.video_io import read_frames
from aniportrait_lib.weights.selection import (
    KIT_LAYOUT,
    OfficialSizes,
    WeightsSpec,
    default_weights_spec,
    latest_motion_module,
    missing_kit_pieces,
    parse_weights_spec,
    resolve_weights,
)


def test_specs_parse_or_explain(tmp_path):
    assert parse_weights_spec(f"kit:{tmp_path}") == WeightsSpec("kit", tmp_path)
    assert parse_weights_spec(f"official:{tmp_path}") == WeightsSpec("official", tmp_path)
    assert parse_weights_spec("official") == WeightsSpec("official", weights_dir())
    for bad in ("kit", "kit:", str(tmp_path), "hf:runwayml/sd", "official;x"):
        with pytest.raises(ValueError, match="official:<weights folder>"):
            parse_weights_spec(bad)
    assert default_weights_spec("gpu") == f"official:{weights_dir()}"
    assert default_weights_spec("quick").startswith("kit:")


def test_empty_run_lists_every_missing_piece_with_its_notebook(tmp_path):
    missing = missing_kit_pieces(tmp_path)
    assert len(missing) == 12  # profile, 5 stage-1 folder files, 3 networks, 3 audio files
    assert sum("notebook 02_train_audio2lmk" in line for line in missing) == 3
    assert sum("notebook 03_pose_guider_study" in line for line in missing) == 9
    assert any("stage1_b/denoising_unet-<step>.pth" in line for line in missing)
    assert len(missing_kit_pieces(tmp_path, audio=False)) == 9
    with pytest.raises(ValueError, match="incomplete") as error:
        resolve_weights(f"kit:{tmp_path}")
    assert all(line.split("  (")[0] in str(error.value) for line in missing)
    with pytest.raises(ValueError, match="is not a folder"):
        resolve_weights(f"kit:{tmp_path / 'nowhere'}")


def test_a_run_missing_one_network_names_that_file(tiny_kit_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    (run / KIT_LAYOUT.stage1 / "pose_guider-7.pth").unlink()
    assert missing_kit_pieces(run) == [
        f"{KIT_LAYOUT.stage1}/pose_guider-7.pth  (written by notebook 03_pose_guider_study, export cell)"
    ]


@pytest.mark.slow
def test_kit_run_resolves_with_the_profile_sampling_and_says_motion_is_zero(tiny_kit_run, tmp_path):
    models = resolve_weights(f"kit:{tiny_kit_run}")
    evaluation = lmk2video_profile("quick").evaluation
    assert (models.config.width, models.config.height, models.config.face_crop_scale) == (64, 64, 1.9)
    assert models.config.steps == evaluation.num_inference_steps
    assert models.config.guidance_scale == evaluation.guidance_scale
    assert models.pipeline.scheduler.config.beta_schedule == evaluation.scheduler.beta_schedule
    assert models.motion.rotation_scale == 1.0  # the kit export's motion settings
    assert models.audio2mesh is not None and models.audio2pose is not None
    assert len(models.notes) == 1 and "zero-initialised" in models.notes[0]
    unet = models.pipeline.denoising_unet
    motion_out = [
        p for n, p in unet.named_parameters() if "motion_modules" in n and n.endswith("proj_out.weight")
    ]
    assert motion_out and all(torch.all(p == 0) for p in motion_out)
    described = json.loads(json.dumps(models.describe()))
    assert described["weights"] == f"kit:{tiny_kit_run.resolve()}" and described["notes"] == models.notes
    pose_only = resolve_weights(f"kit:{tiny_kit_run}", audio=False)
    assert pose_only.audio2mesh is None and pose_only.audio2pose is None
    with pytest.raises(ValueError, match="without its audio models"):
        speech, out = DATA_SAMPLES / "speech.wav", tmp_path / "x.mp4"
        audio_to_video(DATA_SAMPLES / "portrait.png", speech, out_path=out, weights=pose_only)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.slow
def test_a_stage2_export_fills_the_motion_modules(tiny_kit_run, tmp_path):
    from aniportrait_lib.training.lmk2video_export import load_stage1_run
    from aniportrait_lib.training.lmk2video_stage2 import build_stage2_networks, export_stage2

    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    stage1 = load_stage1_run(run / KIT_LAYOUT.stage1)
    stage2 = build_stage2_networks(stage1.networks, stage1.model.unet)
    with torch.no_grad():
        for name, parameter in stage2.denoising_unet.named_parameters():
            if "motion_modules" in name:
                parameter.copy_(torch.randn_like(parameter))
    folder = run / KIT_LAYOUT.stage2
    folder.mkdir(parents=True)
    export_stage2(stage2, folder, 5)
    newest = export_stage2(stage2, folder, 40)
    (folder / "motion_module-notes.pth").write_text("not a checkpoint")  # ignored: not a step
    assert latest_motion_module(folder) == newest
    models = resolve_weights(f"kit:{run}", audio=False)
    assert models.files["motion_module"] == str(newest)
    assert len(models.notes) == 1 and "config.json is missing" in models.notes[0]
    assert (models.config.context_frames, models.config.context_overlap) == (16, 4)  # official fallback
    trained_with = {"evaluation": {"context_frames": 8, "context_overlap": 2}}  # as notebook 04 writes it
    (folder / "config.json").write_text(json.dumps(trained_with))
    models = resolve_weights(f"kit:{run}", audio=False)
    assert models.notes == [] and (models.config.context_frames, models.config.context_overlap) == (8, 2)
    loaded = dict(models.pipeline.denoising_unet.named_parameters())
    trained = {n: p for n, p in stage2.denoising_unet.named_parameters() if "motion_modules" in n}
    assert trained and all(torch.equal(loaded[n], p) for n, p in trained.items())

    torch.save({"down_blocks.0.motion_modules.0.nonsense": torch.zeros(1)}, folder / "motion_module-99.pth")
    with pytest.raises(ValueError, match="motion_module-99.pth"):
        resolve_weights(f"kit:{run}", audio=False)


def test_incomplete_official_folder_reports_what_each_mode_needs(tmp_path):
    (tmp_path / "pose_guider.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="incomplete for pose → video") as error:
        resolve_weights(f"official:{tmp_path}", audio=False)
    report = str(error.value)
    assert "missing: reference_unet.pth" in report and "missing: motion_module.pth" in report
    assert "audio2mesh" not in report and "MISSING pose_guider" not in report
    with pytest.raises(ValueError, match="incomplete for audio → video") as error:
        resolve_weights(f"official:{tmp_path}")
    assert "missing: audio2mesh.pt" in str(error.value) and "wav2vec2-base-960h" in str(error.value)


@pytest.mark.slow
def test_official_folder_gives_the_same_video_as_its_components(official_folder, tmp_path):
    """The oracle in the official layout, resolved by spec, renders exactly what the components do."""
    from aniportrait_lib.data.samples import load_portrait
    from aniportrait_lib.models.components import load_official_components

    folder, configs = official_folder
    sizes = OfficialSizes(
        guider_config=_oracle_guider_config(configs, False),
        scheduler_config=DDIMConfig(**configs["scheduler"]),
    )
    models = resolve_weights(f"official:{folder}", audio=False, official_sizes=sizes)
    assert models.config == GenerateConfig() and models.notes == []  # sampled the official way
    parts = load_official_components(folder, guider_config=sizes.guider_config,
                                     scheduler_config=sizes.scheduler_config)  # fmt: skip
    direct = parts.pipeline()
    direct.set_progress_bar_config(disable=True)
    template = np.zeros((6, 6))
    template[:, 1] = np.linspace(0, 8, 6)
    config = GenerateConfig(width=128, height=128, steps=2)
    a = pose_to_video(load_portrait(), template, out_path=tmp_path / "a.mp4", config=config, weights=models)
    b = pose_to_video(load_portrait(), template, direct, tmp_path / "b.mp4", config)
    assert np.array_equal(np.stack(list(read_frames(a))), np.stack(list(read_frames(b))))
    saved = json.loads(a.with_suffix(".json").read_text())
    assert saved["weights"]["weights"] == f"official:{folder.resolve()}"
    stages = {
        "portrait landmarks",
        "source motion",
        "Lmk2Video denoising",
        "VAE decode + interpolation + mp4",
    }
    assert set(saved["seconds"]) == stages  # the models came resolved: no "load weights" stage


@pytest.mark.slow
def test_official_folder_loads_the_audio_models(
    official_folder, oracle_dir, fresh_tiny_audio_models, tmp_path
):
    from aniportrait_lib.weights.audio_checkpoints import export_official

    folder, configs = official_folder
    for item in folder.iterdir():  # the shared oracle folder stays untouched: link its parts
        (tmp_path / item.name).symlink_to(item)
    mesh, pose = fresh_tiny_audio_models
    with torch.no_grad():
        mesh.out_fn.weight.normal_()  # not the zero initialisation
    mesh.audio_encoder.save_pretrained(tmp_path / "wav2vec2-base-960h")
    shutil.copy(oracle_dir / "w2v_tiny_preprocessor_config.json",
                tmp_path / "wav2vec2-base-960h" / "preprocessor_config.json")  # fmt: skip
    export_official(mesh, tmp_path / "audio2mesh.pt")
    export_official(pose, tmp_path / "audio2pose.pt")
    sizes = OfficialSizes(
        guider_config=_oracle_guider_config(configs, False), audio2mesh_config=mesh.config,
        audio2pose_config=pose.config,
    )  # fmt: skip
    models = resolve_weights(f"official:{tmp_path}", official_sizes=sizes)
    loaded = models.audio2mesh.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in mesh.state_dict().items())
    assert models.motion.rotation_scale == 0.5  # released models: the official post-processing
