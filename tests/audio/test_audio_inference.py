"""Audio → motion: 0.2 s, exact multiples of 5 s, long input, official compatibility, pose templates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile
import torch

from aniportrait_lib.audio.features import features_from_waveform
from aniportrait_lib.audio.inference import (
    MotionConfig,
    audio_to_motion,
    official_pose_chunks,
    pose_from_audio,
    pose_from_template,
)
from aniportrait_lib.landmarks.pose import smooth_pose_seq

SMALL_WINDOWS = dict(pose_window=40, pose_overlap=10, encoder_window=120, encoder_overlap=30, conv_chunk=64)


def test_official_chunking():
    assert official_pose_chunks(192000, 360) == [(0, 80000, 150), (80000, 192000, 210)]  # 12 s
    assert official_pose_chunks(250000, 469) == [(0, 80000, 150), (80000, 160000, 150), (160000, 250000, 169)]
    with pytest.warns(UserWarning, match="multiple of 150"):  # exactly 10 s: official bug
        assert official_pose_chunks(160000, 300) == [(0, 80000, 150), (80000, 160000, 150)]
    with pytest.warns(UserWarning, match="IndexError"):  # <= 5 s: official crash
        assert official_pose_chunks(3200, 6) == [(0, 3200, 6)]


@pytest.mark.parametrize("compat", [False, True])
def test_point_two_seconds(tiny_mesh, tiny_pose, speech_like, compat):
    features = features_from_waveform(speech_like(0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = audio_to_motion(
            features, tiny_mesh, tiny_pose, style_id=3, config=MotionConfig(official_compat=compat)
        )
    assert motion.mesh_offsets.shape == (6, 468, 3) and motion.pose.shape == (6, 6)
    assert np.isfinite(motion.mesh_offsets).all() and np.isfinite(motion.pose).all()


def test_compat_applies_official_post_processing(tiny_pose, speech_like):
    features = features_from_waveform(speech_like(0.2))
    with pytest.warns(UserWarning):
        pose = pose_from_audio(tiny_pose, features, 7, MotionConfig(official_compat=True))
    raw = tiny_pose.infer(torch.from_numpy(features.input_values)[None], 6, torch.tensor([7]))[
        0
    ].numpy()  # official loop
    expected = smooth_pose_seq(raw * np.array([0.5, 0.5, 0.5, 1, 1, 1]), 7)
    np.testing.assert_allclose(pose, expected, atol=1e-5)


def test_exact_multiple_of_five_seconds(tiny_mesh, tiny_pose, speech_like):
    features = features_from_waveform(speech_like(10.0))
    assert features.seq_len == 300
    with pytest.warns(UserWarning, match="multiple of 150"):
        compat = audio_to_motion(
            features, tiny_mesh, tiny_pose, style_id=1, config=MotionConfig(official_compat=True)
        )
    assert compat.mesh_offsets.shape == (300, 468, 3) and compat.pose.shape == (300, 6)
    assert np.isfinite(compat.pose).all()


def test_long_input_windowed_matches_whole_where_windows_cover_it(tiny_mesh, tiny_pose, speech_like):
    features = features_from_waveform(speech_like(3.0))  # 90 frames
    whole = MotionConfig(pose_window=90, pose_overlap=10, encoder_window=90, encoder_overlap=10)
    single = pose_from_audio(tiny_pose, features, 4, whole)
    compat_like = tiny_pose.infer(torch.from_numpy(features.input_values)[None], 90, torch.tensor([4]))[
        0
    ].numpy()
    expected = smooth_pose_seq(compat_like * np.array([0.5, 0.5, 0.5, 1, 1, 1]), 7)
    np.testing.assert_allclose(single, expected, atol=1e-4)
    windowed = pose_from_audio(tiny_pose, features, 4, MotionConfig(**SMALL_WINDOWS))
    assert windowed.shape == (90, 6) and np.isfinite(windowed).all()


def test_two_minutes_of_audio_mesh_in_bounded_windows(tiny_mesh):
    rng = np.random.default_rng(0)
    features = features_from_waveform(0.1 * rng.standard_normal(16000 * 120).astype(np.float32))
    offsets = audio_to_motion(features, tiny_mesh, pose_template=np.zeros((10, 6))).mesh_offsets
    assert offsets.shape == (3600, 468, 3) and np.isfinite(offsets).all()


@pytest.mark.slow
def test_ten_minutes_of_audio_encoder_in_bounded_windows(tiny_mesh):
    """10 min = 9.6 M samples: conv features in 10 s chunks, transformer in 50 s windows."""
    values = torch.from_numpy(0.1 * np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32))
    with torch.no_grad():
        hidden = tiny_mesh.audio_encoder.encode_long(values[None], 18000)
    assert hidden.shape == (1, 18000, 32) and torch.isfinite(hidden).all()


def test_pose_template_ping_pong_and_file_input(tmp_path, tiny_mesh, speech_like):
    template = np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 6), np.float32)
    tiled = pose_from_template(template, 11)
    assert tiled[:, 0].tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    path = tmp_path / "speech.wav"
    soundfile.write(path, speech_like(0.5), 16000)
    motion = audio_to_motion(path, tiny_mesh, pose_template=template)
    assert motion.pose.shape == (15, 6) and motion.style_id is None
    with pytest.raises(ValueError, match="needs audio2pose or a pose_template"):
        audio_to_motion(path, tiny_mesh)
    with pytest.raises(ValueError, match="pose template must be"):
        pose_from_template(np.zeros((3, 5)), 4)


def test_style_id_is_checked_and_seeded(tiny_mesh, tiny_pose, speech_like):
    features = features_from_waveform(speech_like(0.3))
    with pytest.raises(ValueError, match="style_id must be in"):
        pose_from_audio(tiny_pose, features, 100)
    a = audio_to_motion(features, tiny_mesh, tiny_pose, seed=5)
    b = audio_to_motion(features, tiny_mesh, tiny_pose, seed=5)
    assert a.style_id == b.style_id and 0 <= a.style_id < 100
    np.testing.assert_array_equal(a.pose, b.pose)


def test_silent_audio_gives_finite_motion(tiny_mesh, tiny_pose):
    features = features_from_waveform(np.zeros(16000, np.float32))
    motion = audio_to_motion(features, tiny_mesh, tiny_pose, style_id=0, config=MotionConfig(**SMALL_WINDOWS))
    assert motion.mesh_offsets.shape == (30, 468, 3) and motion.pose.shape == (30, 6)
    assert np.isfinite(motion.mesh_offsets).all() and np.isfinite(motion.pose).all()
