"""Weights selection: spec parsing, kit run folders (complete, incomplete, with a stage-2 export) and official
folders (incomplete, and the oracle written in the official layout)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from aniportrait_lib.models.scheduler import DDIMConfig
from aniportrait_lib.paths import DATA_SAMPLES, weights_dir
from aniportrait_lib.pipelines.generate import GenerateConfig, audio_to_video, pose_to_video
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.pipelines.selection import (
    OfficialSizes,
    WeightsSpec,
    default_weights_spec,
    parse_weights_spec,
    resolve_weights,
)
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.video_io import read_frames
from aniportrait_lib.weights.components import _oracle_guider_config


def test_specs_parse_or_explain(tmp_path):
    assert parse_weights_spec(f"kit:{tmp_path}") == WeightsSpec("kit", tmp_path)
    assert parse_weights_spec(f"official:{tmp_path}") == WeightsSpec("official", tmp_path)
    assert parse_weights_spec("official") == WeightsSpec("official", weights_dir())
    for bad in ("kit", "kit:", str(tmp_path), "hf:runwayml/sd", "official;x"):
        with pytest.raises(ValueError, match="official:<weights folder>"):
            parse_weights_spec(bad)
    assert default_weights_spec("gpu") == f"official:{weights_dir()}"
    assert default_weights_spec("quick").startswith("kit:")


STAGE1 = "03_pose_guider_study/stage1_b"  # where the tiny_kit_run fixture keeps its exports
AUDIO = "02_train_audio2lmk/audio2lmk"


def test_a_folder_without_exports_says_so(tmp_path):
    with pytest.raises(ValueError, match="no kit_index.json in this folder"):
        resolve_weights(f"kit:{tmp_path}")
    with pytest.raises(ValueError, match="is not a folder"):
        resolve_weights(f"kit:{tmp_path / 'nowhere'}")


def test_missing_components_are_named_with_what_writes_them(tiny_kit_run, tmp_path):
    shutil.copytree(tiny_kit_run / STAGE1, tmp_path / "only_stage1")
    with pytest.raises(ValueError, match="incomplete for audio → video") as error:
        resolve_weights(f"kit:{tmp_path}")
    assert "audio2lmk: the Audio2Lmk export (notebook 02_train_audio2lmk" in str(error.value)
    assert "stage1" not in str(error.value).split("missing:")[1].split("found:")[0]


def test_every_problem_of_an_inconsistent_export_is_listed(tiny_kit_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    (run / STAGE1 / "pose_guider-7.pth").unlink()
    with (run / AUDIO / "audio2pose.pt").open("ab") as file:
        file.write(b"appended")
    shutil.copytree(run / STAGE1, run / "copy_of_stage1")
    with pytest.raises(ValueError, match="is inconsistent") as error:
        resolve_weights(f"kit:{run}")
    message = str(error.value)
    assert message.count("pose_guider-7.pth, which is missing") == 2  # in both copies
    assert "audio2pose.pt with" in message and "changed or truncated" in message
    assert "stage1 is exported twice" in message
    (run / AUDIO / "kit_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable index"):
        resolve_weights(f"kit:{run / AUDIO}")


@pytest.mark.slow
def test_a_copied_export_folder_resolves_like_its_run(tiny_kit_run, tmp_path):
    copied = tmp_path / "my_weights"
    shutil.copytree(tiny_kit_run / STAGE1, copied / "video")
    shutil.copytree(tiny_kit_run / AUDIO, copied / "speech")
    from_run = resolve_weights(f"kit:{tiny_kit_run}")
    from_copy = resolve_weights(f"kit:{copied}")
    assert from_copy.config == from_run.config and from_copy.motion == from_run.motion
    assert from_copy.files == {"stage1": str(copied / "video"), "audio2lmk": str(copied / "speech")}
    ours, theirs = (
        from_copy.pipeline.denoising_unet.state_dict(),
        from_run.pipeline.denoising_unet.state_dict(),
    )
    assert all(torch.equal(ours[k], v) for k, v in theirs.items() if "motion_modules" not in k)


def test_a_run_folder_from_before_indexes_is_indexed_in_place(tiny_kit_run, tmp_path):
    from aniportrait_lib.weights.__main__ import main as weights_cli
    from aniportrait_lib.weights.kit_index import find_export

    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    for index in run.rglob("kit_index.json"):
        index.unlink()
    evaluation = dataclasses.asdict(stage_configs("quick").lmk2video.evaluation)
    (run / "03_pose_guider_study" / "config.json").write_text(
        json.dumps({"profile": {"name": "quick"}, "lmk2video": {"evaluation": evaluation}})
    )
    with pytest.raises(ValueError, match="written before exports described themselves") as error:
        resolve_weights(f"kit:{run}")
    assert f"python -m aniportrait_lib.weights index {run}" in str(error.value)
    assert weights_cli(["index", str(run)]) == 0
    export = find_export(run)
    assert set(export.components) == {"stage1", "audio2lmk"}
    sampling = export["stage1"].config["sampling"]
    assert (
        sampling["steps"] == evaluation["num_inference_steps"]
        and sampling["scheduler"]["beta_schedule"] == (evaluation["scheduler"]["beta_schedule"])
    )
    assert export["stage1"].made_by["source"] == "legacy run folder, indexed in place"


@pytest.mark.slow
def test_kit_run_resolves_with_the_profile_sampling_and_says_motion_is_zero(tiny_kit_run, tmp_path):
    models = resolve_weights(f"kit:{tiny_kit_run}")
    evaluation = stage_configs("quick").lmk2video.evaluation
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
    from aniportrait_lib.models.lmk2video import build_stage2_networks
    from aniportrait_lib.weights.kit_lmk2video import export_stage2, latest_motion_module, load_stage1_run

    run = tmp_path / "run"
    shutil.copytree(tiny_kit_run, run)
    stage1 = load_stage1_run(run / STAGE1)
    stage2 = build_stage2_networks(stage1.networks, stage1.model.unet)
    with torch.no_grad():
        for name, parameter in stage2.denoising_unet.named_parameters():
            if "motion_modules" in name:
                parameter.copy_(torch.randn_like(parameter))
    folder = run / "elsewhere" / "stage2"
    denoiser = run / STAGE1 / "denoising_unet-7.pth"
    export_stage2(stage2, folder, 5)
    newest = export_stage2(stage2, folder, 40, stage1_denoiser=denoiser)  # no context: official windows
    (folder / "motion_module-notes.pth").write_text("not a checkpoint")  # ignored: not a step
    assert latest_motion_module(folder) == newest
    models = resolve_weights(f"kit:{run}", audio=False)
    assert models.files["motion_module"] == str(newest)
    assert len(models.notes) == 1 and "does not say which context windows" in models.notes[0]
    assert (models.config.context_frames, models.config.context_overlap) == (16, 4)  # official fallback
    export_stage2(stage2, folder, 40, {"context_frames": 8, "context_overlap": 2}, denoiser)  # as notebook 04
    models = resolve_weights(f"kit:{run}", audio=False)
    assert models.notes == [] and (models.config.context_frames, models.config.context_overlap) == (8, 2)
    loaded = dict(models.pipeline.denoising_unet.named_parameters())
    trained = {n: p for n, p in stage2.denoising_unet.named_parameters() if "motion_modules" in n}
    assert trained and all(torch.equal(loaded[n], p) for n, p in trained.items())

    other = tmp_path / "other_stage1"
    shutil.copytree(run / STAGE1, other)
    with (other / "denoising_unet-7.pth").open("ab") as file:
        file.write(b"retrained")
    shutil.rmtree(run / STAGE1)
    (other / "kit_index.json").unlink()
    from aniportrait_lib.weights.kit_index import made_by
    from aniportrait_lib.weights.kit_lmk2video import SamplingSettings, index_stage1_export

    index_stage1_export(other, SamplingSettings(), made_by("test"))
    shutil.move(other, run / STAGE1)
    with pytest.raises(ValueError, match="trained on stage-1 denoiser denoising_unet-7.pth"):
        resolve_weights(f"kit:{run}", audio=False)

    shutil.rmtree(run / STAGE1)
    shutil.copytree(tiny_kit_run / STAGE1, run / STAGE1)
    torch.save({"down_blocks.0.motion_modules.0.nonsense": torch.zeros(1)}, folder / "motion_module-99.pth")
    export_stage2(stage2, folder, 40, {"context_frames": 8, "context_overlap": 2})
    index = json.loads((folder / "kit_index.json").read_text())
    index["components"]["motion_module"]["config"]["file"] = "motion_module-99.pth"
    index["components"]["motion_module"]["files"] = {
        "motion_module-99.pth": (folder / "motion_module-99.pth").stat().st_size
    }
    (folder / "kit_index.json").write_text(json.dumps(index))
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
    from aniportrait_lib.weights.components import load_official_components

    folder, configs = official_folder
    sizes = OfficialSizes(
        guider_config=_oracle_guider_config(configs, False),
        scheduler_config=DDIMConfig(**configs["scheduler"]),
    )
    models = resolve_weights(f"official:{folder}", audio=False, official_sizes=sizes, official_compat=False)
    assert models.config == GenerateConfig()  # the official sampling settings, the kit's numerics
    assert len(models.notes) == 1 and "the kit's way" in models.notes[0]
    parts = load_official_components(folder, guider_config=sizes.guider_config,
                                     scheduler_config=sizes.scheduler_config)  # fmt: skip
    direct = Pose2VideoPipeline.from_components(parts)
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
@pytest.mark.parametrize("case", ["A", "B"])
def test_default_official_path_matches_the_official_pipeline(official_folder, oracle_dir, case):
    """``official:`` by default samples as the official scripts: the oracle's videos (case B: 20 frames in
    wrap-around windows) come out of the resolved models with their own settings, train-mode BatchNorm
    and ``2·uint8 − 1`` pose inputs included."""
    import PIL.Image

    folder, configs = official_folder
    sizes = OfficialSizes(guider_config=_oracle_guider_config(configs, False),
                          scheduler_config=DDIMConfig(**configs["scheduler"]))  # fmt: skip
    models = resolve_weights(f"official:{folder}", audio=False, official_sizes=sizes)
    assert models.notes == [] and models.config.wrap_around and models.pipeline.config.official_compat
    assert models.pipeline.pose_guider.training or any(
        m.training for m in models.pipeline.pose_guider.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )
    data = torch.load(oracle_dir / "pipeline_io.pt", weights_only=True)[case]
    config = models.config
    videos = models.pipeline(
        PIL.Image.open(oracle_dir / "pipe_ref_image.png"), data["pose_images"].numpy(),
        data["ref_pose_image"].numpy(), width=128, height=128, num_inference_steps=data["steps"],
        guidance_scale=config.guidance_scale, generator=torch.manual_seed(config.seed),
        context_frames=config.context_frames, context_overlap=config.context_overlap,
        wrap_around=config.wrap_around,
    ).videos  # fmt: skip
    torch.testing.assert_close(videos, data["video"], atol=1e-3, rtol=0)


def test_a_wrong_motion_module_file_names_the_motion_keys_it_lacks(official_folder, tmp_path):
    folder, configs = official_folder
    copy = tmp_path / "weights"
    shutil.copytree(folder, copy)
    shutil.copy(copy / "reference_unet.pth", copy / "motion_module.pth")  # a 2-D UNet where motion should be
    sizes = OfficialSizes(guider_config=_oracle_guider_config(configs, False))
    with pytest.raises(ValueError, match="motion_module.pth") as error:
        resolve_weights(f"official:{copy}", audio=False, official_sizes=sizes)
    message = str(error.value)
    assert "motion" in message and "2-D UNet" in message and len(message) < 2000  # not the whole denoiser


def test_models_end_in_one_dtype_whatever_their_files(tiny_kit_run):
    """A part saved in float16 (e.g. an fp16 image_encoder folder) is cast with the rest: on the CPU,
    a network left in float16 beside float32 ones fails with "expected m1 and m2 to have the same dtype"."""
    models = resolve_weights(f"kit:{tiny_kit_run}", audio=False)
    models.pipeline.image_encoder.half()
    models.to("cpu", torch.float32)
    dtypes = {p.dtype for m in models.pipeline.components.values() if isinstance(m, torch.nn.Module)
              for p in m.parameters()}  # fmt: skip
    assert dtypes == {torch.float32}
    models.to("cpu", torch.bfloat16)
    assert models.placement == {"device": "cpu", "dtype": "bfloat16"}
    assert models.pipeline.image_encoder.dtype == models.pipeline.vae.dtype == torch.bfloat16


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
