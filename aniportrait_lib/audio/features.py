"""Audio → wav2vec2 input: decoding, 16 kHz mono resampling, normalisation, frame count (spec §2.1).

The official script does ``librosa.load(path, sr=16000)`` and then runs the wav2vec2-base-960h
``Wav2Vec2FeatureExtractor`` (``do_normalize=True``): the whole clip is shifted to zero mean and
scaled to unit variance, ``(x - mean) / sqrt(var + 1e-7)``. The number of video frames the audio
drives is ``seq_len = ceil(num_samples / 16000 * 30)`` (30 fps fixed).

This module does the same with three additions a student will meet on real files:

* **any container**: wav / flac / ogg / mp3 are decoded by soundfile (libsndfile); anything else
  soundfile refuses (m4a, aac, mp4 with an audio track, ...) by PyAV (FFmpeg);
* **clear errors**: an empty, corrupt or non-audio file raises a ``ValueError`` naming the file;
* **silence stays finite**: with a constant signal the variance is 0 and the ``1e-7`` epsilon makes
  the result exactly 0 instead of NaN (the official extractor behaves the same way).

Memory: the decoded waveform of a 10-minute clip is ~38 MB (float32), so decoding and normalising
the whole clip at once is bounded and exact. Long audio is made affordable in the *encoder*
(``encoder.py``), which consumes ``input_values`` in windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile


@dataclass(frozen=True)
class AudioFeatureConfig:
    """How audio becomes wav2vec2 input values."""

    sampling_rate: int = 16000  # wav2vec2-base-960h preprocessor_config.json "sampling_rate"
    fps: int = 30  # spec §2.1: audio2vid fixes 30 fps for the landmark sequence
    normalize_eps: float = 1e-7  # transformers Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm epsilon
    do_normalize: bool = True  # wav2vec2-base-960h preprocessor_config.json "do_normalize"
    resample_type: str = "soxr_hq"  # librosa.load default res_type (what the official call uses)


@dataclass
class AudioFeatures:
    """Model-ready audio.

    Attributes:
        input_values: (N,) float32, normalised waveform at ``sampling_rate`` (zero mean, unit variance).
        seq_len: number of video frames the clip drives, ``ceil(N / sampling_rate * fps)``.
        sampling_rate: Hz of ``input_values``.
        source: where the samples came from (file path or "<array>"), used in error messages.
    """

    input_values: np.ndarray
    seq_len: int
    sampling_rate: int
    source: str = "<array>"

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return len(self.input_values) / self.sampling_rate


def frame_count(num_samples: int, sampling_rate: int = 16000, fps: int = 30) -> int:
    """Official frame-count rule ``ceil(num_samples / sampling_rate * fps)`` (spec §2.1).

    Computed in exact integer arithmetic (``-(-a // b)``) so that e.g. 6400 samples give 12 and
    160000 samples give exactly 300, without float rounding surprises.
    """
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return -(-num_samples * fps // sampling_rate)


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """(samples (N, C) float32, sample rate) via libsndfile; raises soundfile.LibsndfileError."""
    data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data, int(sr)


def _decode_pyav(path: Path) -> tuple[np.ndarray, int]:
    """(samples (N, C) float32, sample rate) of the first audio stream via FFmpeg (PyAV)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: the file has no audio stream")
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp")  # planar float32 (C, n), same layout and rate
        chunks: list[np.ndarray] = []
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            for converted in to_float.resample(frame):
                chunks.append(converted.to_ndarray())
                rate = converted.sample_rate
    if not chunks:
        return np.zeros((0, 1), np.float32), int(rate or 16000)
    return np.concatenate(chunks, axis=1).T.astype(np.float32), int(rate)


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any common audio file to ``(samples (N, C) float32 in [-1, 1], sample_rate)``.

    Raises:
        ValueError: the file is missing, empty (0 bytes), is not audio, is corrupt, or has no audio stream.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: audio file not found")
    if path.stat().st_size == 0:  # both decoders would fail with a long "format not recognised" error
        raise ValueError(f"{path}: empty audio file (0 bytes)")
    try:
        return _decode_soundfile(path)
    except soundfile.LibsndfileError as sf_error:
        try:
            return _decode_pyav(path)
        except (av.FFmpegError, ValueError, IndexError) as av_error:
            raise ValueError(
                f"{path}: not a decodable audio file (libsndfile: {sf_error}; FFmpeg: {av_error})"
            ) from av_error


def to_mono_16k(samples: np.ndarray, sampling_rate: int, target_rate: int = 16000, res_type: str = "soxr_hq"):
    """Average the channels of ``samples`` (N, C) and resample to ``target_rate``.

    Same order as ``librosa.load(sr=16000, mono=True)``: mono first, then resample.

    Returns:
        (M,) float32 waveform at ``target_rate`` Hz.
    """
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sampling_rate != target_rate and len(mono) > 0:
        mono = librosa.resample(mono, orig_sr=sampling_rate, target_sr=target_rate, res_type=res_type)
    return mono.astype(np.float32, copy=False)


def load_waveform(path: str | Path, config: AudioFeatureConfig | None = None) -> np.ndarray:
    """Decode ``path`` to a (N,) float32 mono waveform at ``config.sampling_rate``.

    Raises:
        ValueError: unreadable file, or an empty one: 0 bytes, or a header without samples.
    """
    config = config or AudioFeatureConfig()
    samples, rate = decode_audio(path)
    waveform = to_mono_16k(samples, rate, config.sampling_rate, config.resample_type)
    if waveform.size == 0:
        raise ValueError(f"{path}: empty audio file (a header but 0 samples)")
    if not np.all(np.isfinite(waveform)):
        raise ValueError(f"{path}: decoded samples contain NaN or infinity (corrupt file?)")
    return waveform


def normalize_waveform(waveform: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Zero-mean, unit-variance normalisation over the whole clip (Wav2Vec2FeatureExtractor).

    ``(x - mean) / sqrt(var + eps)`` with the population variance. The statistics are accumulated in
    float64 (exact for a 10-minute clip); a silent (constant) clip gives exactly 0, never NaN.

    Args:
        waveform: (N,) samples, any float dtype.

    Returns:
        (N,) float32.
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"waveform must be 1-D (N,), got shape {x.shape}")
    mean = x.mean() if x.size else 0.0
    var = x.var() if x.size else 0.0
    return ((x - mean) / math.sqrt(var + eps)).astype(np.float32)


def features_from_waveform(
    waveform: np.ndarray, config: AudioFeatureConfig | None = None, source: str = "<array>"
) -> AudioFeatures:
    """Normalise a 16 kHz mono waveform (N,) and attach its frame count.

    Raises:
        ValueError: empty or non-finite waveform (``source`` is named in the message).
    """
    config = config or AudioFeatureConfig()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"{source}: expected a non-empty 1-D waveform, got shape {waveform.shape}")
    if not np.all(np.isfinite(waveform)):
        raise ValueError(f"{source}: waveform contains NaN or infinity")
    values = normalize_waveform(waveform, config.normalize_eps) if config.do_normalize else waveform
    seq_len = frame_count(len(values), config.sampling_rate, config.fps)
    return AudioFeatures(values, seq_len, config.sampling_rate, source)


def load_audio_features(path: str | Path, config: AudioFeatureConfig | None = None) -> AudioFeatures:
    """File → :class:`AudioFeatures` (the official ``prepare_audio_feature``, made robust).

    Args:
        path: wav / mp3 / flac / ogg / m4a / mp4 ...; stereo or mono; any sample rate.
        config: sampling rate, fps and normalisation; defaults follow the official code.

    Raises:
        ValueError: missing, empty, corrupt or non-audio file (the message names it).
    """
    config = config or AudioFeatureConfig()
    waveform = load_waveform(path, config)
    return features_from_waveform(waveform, config, source=str(path))
