"""End-to-end generation: official-folder loading, parity with the official pipeline, audio muxing,
keyframe acceleration, and bad inputs that must leave no output behind."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from aniportrait_lib.data.samples import load_portrait, load_speech
from aniportrait_lib.models.scheduler import DDIMConfig
from aniportrait_lib.pipelines.generate import (
    GenerateConfig,
    audio_to_video,
    pose_to_video,
    render_pose_images,
)
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline
from aniportrait_lib.video_io import probe_video
from aniportrait_lib.weights.components import (
    _oracle_guider_config,
    load_official_components,
)

pytestmark = pytest.mark.slow


def _pipeline(official_folder, official_compat: bool) -> Pose2VideoPipeline:
    folder, configs = official_folder
    c = load_official_components(
        folder,
        official_compat=official_compat,
        guider_config=_oracle_guider_config(configs, official_compat),
        scheduler_config=DDIMConfig(**configs["scheduler"]),
    )
    pipe = Pose2VideoPipeline.from_components(c, official_compat)
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


@pytest.fixture(scope="module")
def one_second_speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    speech = load_speech()
    sf.write(path, speech.samples[: speech.sample_rate], speech.sample_rate)
    return path


def test_audio_to_video_muxes_audio_with_keyframe_acceleration(
    official_folder, one_second_speech, tmp_path, fresh_tiny_audio_models
):
    mesh, pose = fresh_tiny_audio_models
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


def test_other_frame_rates_resample_the_motion(
    official_folder, one_second_speech, tmp_path, fresh_tiny_audio_models
):
    mesh, pose = fresh_tiny_audio_models
    config = GenerateConfig(width=128, height=128, steps=1, fps=15, keyframe_step=4)
    out = audio_to_video(load_portrait(), one_second_speech, mesh, _pipeline(official_folder, False),
                         tmp_path / "slow.mp4", config, audio2pose=pose)  # fmt: skip
    info = probe_video(out)
    assert info.num_frames == 15 and info.fps == pytest.approx(15)  # 1 s at 15 fps, not 30 frames
    assert info.audio_duration == pytest.approx(1.0, abs=0.1)


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
    assert b"crf=4.0" in out.read_bytes()  # below 256 px the finer quality (x264 records its settings)


def test_small_videos_are_written_finer_unless_told():
    assert GenerateConfig(width=96, height=96).video_crf() == 4
    assert GenerateConfig(width=512, height=256).video_crf() == 18  # the shorter side decides
    assert GenerateConfig(width=512, height=128).video_crf() == 4
    assert GenerateConfig(width=96, height=96, crf=23).video_crf() == 23


class _NeverCalled:
    def __call__(self, *args, **kwargs):
        raise AssertionError("the pipeline must not run on bad input")


def test_bad_inputs_fail_clearly_and_leave_nothing(tmp_path, one_second_speech, fresh_tiny_audio_models):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mesh, pose = fresh_tiny_audio_models
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
    template = np.zeros((4, 6))
    with pytest.raises(ValueError, match="not both"):
        pose_to_video(load_portrait(), template, _NeverCalled(), out_dir / "f.mp4", config, weights="kit:x")
    with pytest.raises(ValueError, match="pass weights="):
        pose_to_video(load_portrait(), template, out_path=out_dir / "g.mp4", config=config)
    with pytest.raises(ValueError, match="no such video"):
        pose_to_video(load_portrait(), tmp_path / "missing.mp4", _NeverCalled(), out_dir / "h.mp4", config)
    assert list(out_dir.iterdir()) == []
