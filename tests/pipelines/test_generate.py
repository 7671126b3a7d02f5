"""End-to-end generation: official-folder loading, parity with the official pipeline, audio muxing,
keyframe acceleration, and bad inputs that must leave no output behind."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2Config

from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig
from aniportrait_lib.data.samples import load_portrait, load_speech
from aniportrait_lib.models.components import (
    _oracle_guider_config,
    load_official_components,
    oracle_state_dict,
)
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.scheduler import DDIMConfig
from aniportrait_lib.pipelines.generate import (
    GenerateConfig,
    audio_to_video,
    pose_to_video,
    render_pose_images,
)
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.video_io import probe_video
from aniportrait_lib.weights.lmk2video_checkpoints import image_encoder_to_kit, load_into

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def official_folder(oracle_dir, tmp_path_factory):
    """The oracle's tiny weights written as a user's ``pretrained_weights/`` folder (official layout)."""
    folder = tmp_path_factory.mktemp("pretrained_weights")
    configs = json.loads((oracle_dir / "configs.json").read_text())
    for name in ("reference_unet", "pose_guider"):
        torch.save(oracle_state_dict(oracle_dir, f"{name}_sd.pt"), folder / f"{name}.pth")
    full = oracle_state_dict(oracle_dir, "denoising_unet_sd.pt")
    torch.save({k: v for k, v in full.items() if "motion_module" not in k}, folder / "denoising_unet.pth")
    torch.save({k: v for k, v in full.items() if "motion_module" in k}, folder / "motion_module.pth")
    (folder / "stable-diffusion-v1-5" / "unet").mkdir(parents=True)
    (folder / "stable-diffusion-v1-5" / "unet" / "config.json").write_text(json.dumps(configs["unet2d"]))
    vae = build_vae(configs["vae"])
    load_into(vae, oracle_state_dict(oracle_dir, "vae_sd.pt"), "vae_sd.pt")
    vae.save_pretrained(folder / "sd-vae-ft-mse")
    encoder = build_clip_image_encoder(configs["clip_vision"])
    load_into(encoder, image_encoder_to_kit(oracle_state_dict(oracle_dir, "image_encoder_sd.pt")), "clip")
    encoder.save_pretrained(folder / "image_encoder")
    return folder, configs


def _pipeline(official_folder, official_compat: bool) -> Pose2VideoPipeline:
    folder, configs = official_folder
    c = load_official_components(
        folder,
        official_compat=official_compat,
        guider_config=_oracle_guider_config(configs, official_compat),
        scheduler_config=DDIMConfig(**configs["scheduler"]),
    )
    pipe = Pose2VideoPipeline(
        c.vae,
        c.image_encoder,
        c.reference_unet,
        c.denoising_unet,
        c.pose_guider,
        c.scheduler,
        official_compat,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_official_folder_reproduces_the_official_pipeline(official_folder, oracle_dir, tmp_path):
    import PIL.Image

    data = torch.load(oracle_dir / "pipeline_io.pt", weights_only=True)["B"]  # 20 frames, wrap-around
    frames = {}
    config = GenerateConfig(
        width=128, height=128, steps=data["steps"], wrap_around=True, cache_pose_features=True
    )
    out = render_pose_images(
        _pipeline(official_folder, official_compat=True),
        np.asarray(PIL.Image.open(oracle_dir / "pipe_ref_image.png").convert("RGB")),
        data["ref_pose_image"].numpy(),
        data["pose_images"].numpy(),
        tmp_path / "parity.mp4",
        config,
        sink=lambda i, frame: frames.__setitem__(i, frame),
    )
    got = torch.from_numpy(np.stack([frames[i] for i in range(len(frames))])).float() / 255
    torch.testing.assert_close(got, data["video"][0].permute(1, 2, 3, 0), atol=1 / 255 + 1e-3, rtol=0)
    assert probe_video(out).num_frames == data["n_frames"]


def _tiny_audio_models():
    w2v = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )  # fmt: skip
    torch.manual_seed(0)
    mesh = Audio2Mesh(Audio2MeshConfig(latent_dim=16, encoder=w2v), random_encoder_ok=True).eval()
    pose = Audio2Pose(
        Audio2PoseConfig(latent_dim=16, num_layers=1, encoder=w2v), random_encoder_ok=True
    ).eval()
    return mesh, pose


@pytest.fixture(scope="module")
def one_second_speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    speech = load_speech()
    sf.write(path, speech.samples[: speech.sample_rate], speech.sample_rate)
    return path


def test_audio_to_video_muxes_audio_with_keyframe_acceleration(official_folder, one_second_speech, tmp_path):
    mesh, pose = _tiny_audio_models()
    config = GenerateConfig(width=128, height=128, steps=1, keyframe_step=3)
    out = audio_to_video(
        load_portrait(), one_second_speech, mesh, _pipeline(official_folder, False), tmp_path / "talk.mp4",
        config, audio2pose=pose, style_id=3,
    )  # fmt: skip
    info = probe_video(out)
    assert info.num_frames == 30 and info.fps == pytest.approx(30)  # ceil(1.0 s · 30)
    assert info.audio_sample_rate == 16_000 and info.audio_duration == pytest.approx(1.0, abs=0.08)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["generate"]["keyframe_step"] == 3 and saved["style_id"] == 3


def test_pose_template_drives_the_portrait(official_folder, tmp_path):
    template = np.zeros((12, 6))
    template[:, 1] = np.linspace(0, 10, 12)  # a slow turn
    np.save(tmp_path / "pose_temp.npy", template)
    config = GenerateConfig(width=128, height=128, steps=1, max_frames=8)
    out = pose_to_video(
        load_portrait(),
        tmp_path / "pose_temp.npy",
        _pipeline(official_folder, False),
        tmp_path / "t.mp4",
        config,
    )
    assert probe_video(out).num_frames == 8 and probe_video(out).audio_sample_rate is None


class _NeverCalled:
    def __call__(self, *args, **kwargs):
        raise AssertionError("the pipeline must not run on bad input")


def test_bad_inputs_fail_clearly_and_leave_nothing(tmp_path, one_second_speech):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mesh, pose = _tiny_audio_models()
    config = GenerateConfig(width=128, height=128, steps=1)
    blank = np.full((256, 256, 3), 127, np.uint8)
    with pytest.raises(ValueError, match="no face"):
        audio_to_video(
            blank, one_second_speech, mesh, _NeverCalled(), out_dir / "a.mp4", config, audio2pose=pose
        )
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(ValueError, match="junk.wav"):
        audio_to_video(
            load_portrait(),
            tmp_path / "junk.wav",
            mesh,
            _NeverCalled(),
            out_dir / "b.mp4",
            config,
            audio2pose=pose,
        )
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    with pytest.raises(ValueError, match="empty.wav"):
        audio_to_video(
            load_portrait(),
            tmp_path / "empty.wav",
            mesh,
            _NeverCalled(),
            out_dir / "c.mp4",
            config,
            audio2pose=pose,
        )
    np.save(tmp_path / "bad_template.npy", np.zeros((10, 5)))
    with pytest.raises(ValueError, match=r"\(T, 6\)"):
        pose_to_video(
            load_portrait(), tmp_path / "bad_template.npy", _NeverCalled(), out_dir / "d.mp4", config
        )
    with pytest.raises(ValueError, match="head motion"):
        audio_to_video(load_portrait(), one_second_speech, mesh, _NeverCalled(), out_dir / "e.mp4", config)
    assert list(out_dir.iterdir()) == []
