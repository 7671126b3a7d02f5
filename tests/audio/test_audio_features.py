"""Audio decoding and wav2vec2 input features: official rule, odd formats, bad files."""

from __future__ import annotations

import re
import subprocess

import imageio_ffmpeg
import librosa
import numpy as np
import pytest
import soundfile
import torch
from transformers import Wav2Vec2FeatureExtractor

from aniportrait_lib.audio.features import (
    features_from_waveform,
    frame_count,
    load_audio_features,
    load_waveform,
    normalize_waveform,
)


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def _dominant_hz(wave: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / rate)[spectrum.argmax()])


def test_frame_count_rule():
    assert frame_count(6400) == 12  # the oracle clip
    assert frame_count(160000) == 300  # exactly 10 s → exactly 300 frames, no float round-up
    assert frame_count(16001) == 31
    assert frame_count(1) == 1
    assert frame_count(0) == 0


def test_reproduces_oracle_input_values(oracle_dir):
    io = torch.load(oracle_dir / "audio_io.pt", weights_only=True)
    features = features_from_waveform(io["waveform"].numpy())
    assert features.seq_len == io["seq_len"] == 12
    np.testing.assert_allclose(features.input_values, io["input_values"][0].numpy(), atol=1e-5)


def test_normalisation_matches_transformers_feature_extractor(speech_like):
    wave = speech_like(1.3)
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000, return_attention_mask=False)
    expected = extractor(wave, sampling_rate=16000).input_values[0]
    np.testing.assert_allclose(normalize_waveform(wave), expected, atol=1e-5)
    assert abs(float(normalize_waveform(wave).std()) - 1.0) < 1e-3


def test_silent_audio_is_finite_zero(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(8000, np.float32), 16000)
    features = load_audio_features(path)
    assert features.seq_len == 15
    assert np.all(np.isfinite(features.input_values))
    assert np.all(features.input_values == 0.0)  # (0 - 0) / sqrt(0 + 1e-7)


def test_stereo_44k_wav_equals_official_librosa_load(tmp_path, speech_like):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 220 * t)
    stereo = np.stack([left, 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44100)
    official, _ = librosa.load(path, sr=16000)
    features = load_audio_features(path)
    assert len(features.input_values) == len(official) == 16000
    np.testing.assert_allclose(features.input_values, normalize_waveform(official), atol=1e-5)


def test_8k_stereo_mp3(tmp_path):
    wav = tmp_path / "src.wav"
    t = np.arange(2 * 8000) / 8000
    soundfile.write(wav, np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1).astype(np.float32) * 0.5, 8000)
    mp3 = tmp_path / "speech.mp3"
    _ffmpeg("-i", str(wav), "-ac", "2", "-ar", "8000", "-b:a", "32k", str(mp3))
    features = load_audio_features(mp3)
    assert features.sampling_rate == 16000
    assert abs(features.duration_s - 2.0) < 0.15  # mp3 encoder delay / padding
    assert np.all(np.isfinite(features.input_values))
    assert abs(_dominant_hz(features.input_values) - 440) < 5


def test_m4a_goes_through_ffmpeg(tmp_path):
    m4a = tmp_path / "speech.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1:sample_rate=22050", "-c:a", "aac", str(m4a))
    features = load_audio_features(m4a)
    assert abs(features.duration_s - 1.0) < 0.1
    assert abs(_dominant_hz(features.input_values) - 300) < 5


def test_short_clip_is_fine(tmp_path, speech_like):
    path = tmp_path / "short.flac"
    soundfile.write(path, speech_like(0.2), 16000)
    features = load_audio_features(path)
    assert len(features.input_values) == 3200 and features.seq_len == 6


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "corrupt.wav",
            b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4,
            "not a decodable audio file",
        ),
        ("notes.mp3", b"this is plain text, not audio\n" * 50, "not a decodable audio file"),
        ("picture.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "not a decodable audio file"),
    ],
)
def test_bad_files_raise_value_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_audio_features(path)
    assert name in str(info.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="empty.wav.*0 samples"):
        load_audio_features(empty)
    with pytest.raises(ValueError, match="nowhere.wav: audio file not found"):
        load_audio_features(tmp_path / "nowhere.wav")
    with pytest.raises(ValueError, match="NaN"):
        features_from_waveform(np.array([0.0, np.nan], np.float32))


@pytest.mark.parametrize("kind", ["header_only", "zero_bytes"])
def test_empty_wav_is_one_short_message(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "header_only":  # a valid 44-byte WAV header announcing 0 samples
        soundfile.write(path, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: empty audio file (")) as info:
        load_waveform(path)
    assert "libsndfile" not in str(info.value) and "FFmpeg" not in str(info.value)  # no decoder noise
    assert len(str(info.value)) < len(str(path)) + 60


def test_video_without_audio_stream(tmp_path):
    video = tmp_path / "silent_video.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=32x32:d=0.5", "-pix_fmt", "yuv420p", str(video))
    with pytest.raises(ValueError, match="silent_video.mp4"):
        load_audio_features(video)
