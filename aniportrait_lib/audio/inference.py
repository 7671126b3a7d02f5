"""Audio of any length → per-frame mesh offsets (T, 468, 3) and head pose (T, 6) at 30 fps (spec §2.2–2.3).

Two modes:

* **kit (default)**: no length limit, bounded memory, no seams.
  - Mesh: ``Audio2Mesh.infer_long``: exact chunked conv features, then the transformer over
    overlapping windows cross-faded (``encoder.py``, ``windows.py``); the head is per frame.
  - Pose: the audio memory of the whole clip is computed the same way, then Audio2Pose decodes
    windows of ``pose_window`` frames (≤ 600, its positional table). Each window after the first
    starts from the poses the previous window predicted for its first ``pose_overlap`` frames
    (fed as teacher-forcing tokens, i.e. the model continues its own motion), and the two windows'
    outputs are cross-faded over that overlap. Hence no jump where windows meet.
* **official_compat=True**: the official ``audio2vid.py``: Audio2Mesh on the whole clip in one pass;
  Audio2Pose on 5 s audio chunks (80 000 samples, 150 frames) encoded independently, the last chunk
  (``seq_len % 150`` frames) merged into the previous one. Two official failures are *not*
  reproduced; the minimal fix is used and a warning names the official behaviour:
  - audio ≤ 5 s (one chunk): the official merge step raises ``IndexError``; here the single chunk
    is decoded with the full ``seq_len``;
  - ``seq_len`` an exact multiple of 150 (e.g. exactly 10 s): the official code merges a zero-frame
    tail, squeezing the last two chunks (~10 s of audio) into 150 frames and returning 150 poses
    too few; here the tail is kept as its own 150-frame chunk.

  Chunks are decoded with the key/value cache unless ``use_kv_cache=False`` (the literal official
  loop, ~10× slower at paper size; both agree to ~1e-6).

Both modes then scale the rotation (first 3 values) by 0.5 and smooth with a centred window of 7
(official). With a pose template the pose comes from the template instead (official ping-pong
tiling, no scaling or smoothing).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aniportrait_lib.landmarks.pose import smooth_pose_seq

from .audio2mesh import Audio2Mesh
from .audio2pose import Audio2Pose
from .features import AudioFeatures, load_audio_features
from .windows import overlap_add, window_spans


@dataclass
class MotionConfig:
    """How audio becomes motion; defaults reproduce official ``audio2vid.py`` post-processing."""

    rotation_scale: float = 0.5  # audio2vid.py: pose_seq_chunk[:, :3] *= 0.5
    smooth_window: int = 7  # audio2vid.py: smooth_pose_seq(pose_seq, 7)
    num_styles: int = 100  # audio2vid.py: id_seed = random.randint(0, 99)
    official_compat: bool = False  # True: official 5 s pose chunks and whole-clip mesh pass
    official_chunk_s: int = 5  # audio2vid.py: chunk_duration = 5
    pose_window: int = 150  # kit: decoder window in frames (5 s, like the official chunks; <= 600)
    pose_overlap: int = 30  # kit: frames re-predicted and cross-faded between pose windows (1 s)
    encoder_window: int = 1500  # kit: wav2vec2 transformer window in frames (50 s)
    encoder_overlap: int = 150  # kit: cross-fade between encoder windows (5 s)
    conv_chunk: int = 500  # kit: conv-feature chunk in ~50 Hz frames (10 s)
    use_kv_cache: bool = True  # kit: Audio2Pose decodes one position per step (equal to ~1e-6, O(T) work)


@dataclass
class Motion:
    """Audio-driven motion at 30 fps.

    Attributes:
        mesh_offsets: (T, 468, 3) float32 offsets to add to the reference ``lmks3d``.
        pose: (T, 6) float32, euler xyz degrees + translation (relative to the reference pose).
        style_id: Audio2Pose style id used (None with a pose template).
    """

    mesh_offsets: np.ndarray
    pose: np.ndarray
    style_id: int | None


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def mesh_offsets_from_audio(model: Audio2Mesh, features: AudioFeatures, config: MotionConfig) -> np.ndarray:
    """(T, 468, 3) float32 mesh offsets for the whole clip (T = ``features.seq_len``)."""
    values = torch.from_numpy(features.input_values)[None].to(_device(model))
    if config.official_compat:
        out = model.infer(values, features.seq_len)
    else:
        out = model.infer_long(
            values,
            features.seq_len,
            window_frames=config.encoder_window,
            overlap_frames=config.encoder_overlap,
            chunk_frames=config.conv_chunk,
        )
    return out[0].reshape(features.seq_len, -1, 3).float().cpu().numpy()


def official_pose_chunks(
    num_samples: int, seq_len: int, sampling_rate: int = 16000, fps: int = 30, chunk_s: int = 5
) -> list[tuple[int, int, int]]:
    """The official audio2vid chunking as ``[(sample_start, sample_end, frames), ...]``.

    See the module docstring for the two cases (≤ 5 s, zero-frame tail) where the minimal fix
    replaces the official failure; a ``UserWarning`` is issued in those cases.
    """
    chunk, frames = sampling_rate * chunk_s, fps * chunk_s
    bounds = [(start, min(start + chunk, num_samples)) for start in range(0, num_samples, chunk)]
    lengths = [frames] * (len(bounds) - 1) + [seq_len % frames]
    if len(bounds) == 1:
        warnings.warn(
            f"audio of {num_samples / sampling_rate:.2f} s <= {chunk_s} s: the official code raises "
            "IndexError here; decoding it as one chunk",
            stacklevel=2,
        )
        return [(0, num_samples, seq_len)]
    if lengths[-1] == 0:
        warnings.warn(
            f"seq_len {seq_len} is a multiple of {frames}: the official code merges a zero-frame tail "
            f"and returns {seq_len - frames} poses; keeping the tail as its own {frames}-frame chunk",
            stacklevel=2,
        )
        lengths[-1] = frames
        return [(a, b, n) for (a, b), n in zip(bounds, lengths, strict=True)]
    bounds[-2] = (bounds[-2][0], bounds[-1][1])
    lengths[-2] += lengths[-1]
    return [(a, b, n) for (a, b), n in zip(bounds[:-1], lengths[:-1], strict=True)]


def _raw_pose_official(
    model: Audio2Pose, features: AudioFeatures, style: torch.Tensor, config: MotionConfig
) -> torch.Tensor:
    values = torch.from_numpy(features.input_values)[None].to(style.device)
    chunks = official_pose_chunks(
        len(features.input_values), features.seq_len, features.sampling_rate, chunk_s=config.official_chunk_s
    )
    return torch.cat([model.infer(values[:, a:b], n, style, config.use_kv_cache)[0] for a, b, n in chunks])


@torch.no_grad()
def _raw_pose_windowed(
    model: Audio2Pose, features: AudioFeatures, style: torch.Tensor, config: MotionConfig
) -> torch.Tensor:
    values = torch.from_numpy(features.input_values)[None].to(style.device)
    mean_hidden = not model.config.only_last_features
    hidden = model.audio_encoder.encode_long(
        values,
        features.seq_len,
        mean_hidden,
        config.encoder_window,
        config.encoder_overlap,
        config.conv_chunk,
    )
    memory = model.in_fn(hidden)  # (1, T, latent)
    total = features.seq_len
    spans = window_spans(total, config.pose_window, config.pose_overlap)
    known = memory.new_zeros(total, model.config.out_dim)  # latest raw prediction per frame
    pieces = []
    for start, end in spans:
        context = None
        if start > 0:
            context = known[start - 1 : start - 1 + config.pose_overlap][None]
        piece = model.generate(
            memory[:, start:end], style, context, config.use_kv_cache
        )  # (1, end - start, 6)
        known[start:end] = piece[0]
        pieces.append(piece)
    return overlap_add(pieces, spans, total, config.pose_overlap)[0]


def pose_from_audio(
    model: Audio2Pose, features: AudioFeatures, style_id: int, config: MotionConfig | None = None
) -> np.ndarray:
    """(T, 6) float32 head pose: Audio2Pose, rotation × ``rotation_scale``, smoothing (official options)."""
    config = config or MotionConfig()
    if not 0 <= style_id < model.config.num_styles:
        raise ValueError(f"style_id must be in [0, {model.config.num_styles}), got {style_id}")
    if (
        not config.official_compat
        and not 0 < config.pose_overlap < config.pose_window <= model.config.max_len
    ):
        raise ValueError(f"need 0 < pose_overlap < pose_window <= {model.config.max_len}, got {config}")
    style = torch.tensor([style_id], device=_device(model))
    if config.official_compat:
        raw = _raw_pose_official(model, features, style, config)
    else:
        raw = _raw_pose_windowed(model, features, style, config)
    pose = raw.float().cpu().numpy().copy()
    pose[:, :3] *= config.rotation_scale
    return smooth_pose_seq(pose, config.smooth_window).astype(np.float32)


def pose_from_template(template: np.ndarray, seq_len: int) -> np.ndarray:
    """(P, 6) pose template → (seq_len, 6) by ping-pong tiling (official ``pose_temp`` branch).

    The template is played forward then backward without repeating its end frames
    (``concat(seq, seq[-2:0:-1])``), and that loop is repeated and cut to ``seq_len``.
    """
    template = np.asarray(template, dtype=np.float32)
    if template.ndim != 2 or template.shape[0] == 0 or template.shape[1] != 6:
        raise ValueError(f"pose template must be (P>0, 6), got {template.shape}")
    loop = np.concatenate([template, template[-2:0:-1]], axis=0)
    return np.tile(loop, (seq_len // len(loop) + 1, 1))[:seq_len]


def audio_to_motion(
    audio: str | Path | AudioFeatures,
    audio2mesh: Audio2Mesh,
    audio2pose: Audio2Pose | None = None,
    pose_template: np.ndarray | None = None,
    style_id: int | None = None,
    seed: int = 0,
    config: MotionConfig | None = None,
) -> Motion:
    """Speech → mesh offsets and head pose for every video frame (30 fps).

    Args:
        audio: an audio file (any common format) or features from ``load_audio_features``.
        audio2mesh / audio2pose: models in eval mode (their device is used).
        pose_template: (P, 6) pose template; used instead of Audio2Pose when given.
        style_id: Audio2Pose style in [0, 100); None → drawn with ``numpy.random.default_rng(seed)``
            (the official code draws it with ``random.randint(0, 99)``).
        config: windows, official options and the ``official_compat`` switch.

    Raises:
        ValueError: neither ``audio2pose`` nor ``pose_template`` is given, or bad audio.
    """
    config = config or MotionConfig()
    features = audio if isinstance(audio, AudioFeatures) else load_audio_features(audio)
    offsets = mesh_offsets_from_audio(audio2mesh, features, config)
    if pose_template is not None:
        return Motion(offsets, pose_from_template(pose_template, features.seq_len), None)
    if audio2pose is None:
        raise ValueError("audio_to_motion needs audio2pose or a pose_template")
    if style_id is None:
        style_id = int(np.random.default_rng(seed).integers(0, config.num_styles))
    return Motion(offsets, pose_from_audio(audio2pose, features, style_id, config), style_id)
