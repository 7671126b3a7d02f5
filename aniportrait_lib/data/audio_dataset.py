"""Audio2Lmk training data: speech with per-frame mesh offsets and head pose (paper §3.1).

Each item is the dict :class:`~aniportrait_lib.training.audio2lmk.Audio2LmkTrainer` consumes::

    input_values (N,) float32   16 kHz speech, normalised over the *whole clip* (spec §2.1)
    seq_len      int            frames at 30 fps of ``input_values``
    offsets      (seq_len, 468, 3) float32   mesh offsets (cm), the Audio2Mesh target
    pose         (seq_len, 6) float32        euler xyz degrees + translation, the Audio2Pose target
    style_id     int            the speaker's index (Audio2Pose ``id_embed``)

Two sources:

* :class:`CorpusAudioDataset` reads a :class:`~aniportrait_lib.data.mini_corpus.MiniCorpus` split:
  the labels are the stored truth (offsets from the portrait's mesh, pose relative to the
  portrait), the style id is the index of the clip's eSpeak voice in the corpus config.
* :class:`PreparedAudioDataset` reads a prepared dataset of real videos
  (:class:`~aniportrait_lib.data.manifest.PreparedDataset`). MediaPipe gives a pose-free mesh
  ``lmks3d`` per frame; the offsets are ``lmks3d − neutral`` (the maintainers' recipe: offsets
  to the clip's neutral mesh, which at inference become offsets to the reference image's mesh).
  The kit takes the clip's per-vertex median mesh as its neutral. The pose is relative to the
  clip's first frame (the ``pose_temp`` convention). Every clip gets style id 0 unless a mapping
  is given.

Alignment: frame ``t`` covers samples ``[t·16000/30, (t+1)·16000/30)``. A clip's label count may
differ from the official ``seq_len = ceil(N/16000·30)`` by one frame (rounding of the video's
last frame); labels are then cut or their last frame repeated. A larger mismatch is an error.

Cropping: with ``crop_frames`` set, each item is a random window of that many frames (and the
matching ``crop_frames·16000/30`` samples), so clips of different lengths batch together. The
window start is drawn from torch's global RNG, which the trainer seeds and checkpoints, so a
resumed run draws the same windows. Clips shorter than the window are padded at the end: audio
with zeros (silence after normalisation) and labels with their last frame (the face at rest).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from aniportrait_lib.audio.features import AudioFeatureConfig, features_from_waveform, frame_count
from aniportrait_lib.landmarks.pose import relative_poses


@dataclass(frozen=True)
class AudioDatasetConfig:
    """How clips become training items."""

    crop_frames: int | None = 60
    """Window length in frames (kit: 2 s lets batches of 4–8 clips form); None → whole clips
    (then only ``batch_size=1`` works). Must make a whole number of samples (a multiple of 3 at 30 fps)."""
    max_label_mismatch: int = 1
    """Largest tolerated difference between label frames and ``seq_len`` (rounding of the last frame)."""
    cache_clips: int = 256
    """Clips kept decoded in memory (the mini corpus fits entirely)."""
    audio: AudioFeatureConfig = AudioFeatureConfig()
    """Sampling rate, fps and normalisation (official values, spec §2.1)."""


@dataclass(frozen=True)
class ClipArrays:
    """One clip, decoded and aligned: ``len(offsets) == len(pose) == seq_len``."""

    clip_id: str
    input_values: np.ndarray  # (N,) float32, normalised
    offsets: np.ndarray  # (seq_len, 468, 3) float32
    pose: np.ndarray  # (seq_len, 6) float32
    style_id: int

    @property
    def seq_len(self) -> int:
        return len(self.offsets)


def align_labels(labels: np.ndarray, seq_len: int, max_mismatch: int, where: str) -> np.ndarray:
    """Cut or extend (by repeating the last frame) ``labels`` (T, ...) to ``seq_len`` frames.

    Raises:
        ValueError: ``|T − seq_len| > max_mismatch`` (``where`` names the clip).
    """
    if abs(len(labels) - seq_len) > max_mismatch:
        raise ValueError(
            f"{where}: {len(labels)} label frames but the audio gives seq_len {seq_len} "
            f"(more than {max_mismatch} frame apart: audio and labels do not belong together)"
        )
    if len(labels) >= seq_len:
        return labels[:seq_len]
    return np.concatenate([labels, np.repeat(labels[-1:], seq_len - len(labels), axis=0)])


def make_clip(clip_id, samples, offsets, pose, style_id, config: AudioDatasetConfig) -> ClipArrays:
    """Normalise the audio (16 kHz mono (N,)) and align offsets (T, 468, 3) and pose (T, 6) to it."""
    features = features_from_waveform(samples, config.audio, source=clip_id)
    offsets = np.asarray(offsets, np.float32)
    if offsets.ndim != 3 or offsets.shape[1:] != (468, 3):
        raise ValueError(f"{clip_id}: offsets must be (T, 468, 3), got {offsets.shape}")
    pose = np.asarray(pose, np.float32)
    if pose.ndim != 2 or pose.shape[1] != 6:
        raise ValueError(f"{clip_id}: pose must be (T, 6), got {pose.shape}")
    seq_len, tol = features.seq_len, config.max_label_mismatch
    return ClipArrays(
        clip_id,
        features.input_values,
        align_labels(offsets, seq_len, tol, clip_id),
        align_labels(pose, seq_len, tol, clip_id),
        int(style_id),
    )


def crop_item(clip: ClipArrays, start: int, frames: int, config: AudioFeatureConfig) -> dict:
    """Frames ``[start, start + frames)`` of a clip and their samples, padded past the clip's end."""
    if (frames * config.sampling_rate) % config.fps:
        raise ValueError(f"crop of {frames} frames is not a whole number of samples at {config.fps} fps")
    first = start * config.sampling_rate // config.fps
    n_samples = frames * config.sampling_rate // config.fps
    values = clip.input_values[first : first + n_samples]
    values = np.pad(values, (0, n_samples - len(values)))
    labels = {}
    for key in ("offsets", "pose"):
        array = getattr(clip, key)[start : start + frames]
        labels[key] = align_labels(array, frames, frames, clip.clip_id)  # pad with the last frame
    return {
        "input_values": torch.from_numpy(np.ascontiguousarray(values, np.float32)),
        "seq_len": frame_count(n_samples, config.sampling_rate, config.fps),  # == frames
        "offsets": torch.from_numpy(labels["offsets"]),
        "pose": torch.from_numpy(labels["pose"]),
        "style_id": clip.style_id,
        "clip_id": clip.clip_id,
    }


def whole_item(clip: ClipArrays) -> dict:
    """The whole clip as one item (``seq_len`` = the official frame count of its audio)."""
    return {
        "input_values": torch.from_numpy(clip.input_values),
        "seq_len": clip.seq_len,
        "offsets": torch.from_numpy(clip.offsets),
        "pose": torch.from_numpy(clip.pose),
        "style_id": clip.style_id,
        "clip_id": clip.clip_id,
    }


class ClipWindowDataset(Dataset):
    """Base: subclasses list clip ids and implement :meth:`load_clip`; items: see the module docstring."""

    def __init__(self, clip_ids: list[str], config: AudioDatasetConfig | None = None):
        self.config = config or AudioDatasetConfig()
        if self.config.crop_frames is not None and self.config.crop_frames < 1:
            raise ValueError(f"crop_frames must be >= 1 or None, got {self.config.crop_frames}")
        self.clip_ids = list(clip_ids)
        self._cache: OrderedDict[str, ClipArrays] = OrderedDict()

    def load_clip(self, clip_id: str) -> ClipArrays:  # pragma: no cover - abstract
        raise NotImplementedError

    def clip(self, index: int) -> ClipArrays:
        """The whole aligned clip ``index`` (decoded once, then cached)."""
        clip_id = self.clip_ids[index]
        if clip_id not in self._cache:
            self._cache[clip_id] = self.load_clip(clip_id)
            while len(self._cache) > self.config.cache_clips:
                self._cache.popitem(last=False)
        return self._cache[clip_id]

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getitem__(self, index: int) -> dict:
        clip = self.clip(index)
        frames = self.config.crop_frames
        if frames is None:
            return whole_item(clip)
        last_start = max(clip.seq_len - frames, 0)
        start = int(torch.randint(0, last_start + 1, ()).item())
        return crop_item(clip, start, frames, self.config.audio)


class CorpusAudioDataset(ClipWindowDataset):
    """One split of a mini corpus as Audio2Lmk training items.

    Args:
        corpus: a :class:`~aniportrait_lib.data.mini_corpus.MiniCorpus`.
        split: ``"train"`` or ``"heldout"``.
        config: cropping and alignment options.
    """

    def __init__(self, corpus, split: str = "train", config: AudioDatasetConfig | None = None):
        self.corpus = corpus
        self.specs = {c.clip_id: c for c in corpus.split(split)}
        if not self.specs:
            raise ValueError(f"{corpus.root}: split {split!r} has no clips")
        self.voices = list(corpus.config["voices"])
        super().__init__(list(self.specs), config)

    def style_id(self, clip_id: str) -> int:
        """Index of the clip's voice in the corpus's voice list (a stable speaker id)."""
        return self.voices.index(self.specs[clip_id].voice)

    def load_clip(self, clip_id: str) -> ClipArrays:
        samples, rate = self.corpus.audio(clip_id)
        if rate != self.config.audio.sampling_rate:
            raise ValueError(f"{self.corpus.audio_path(clip_id)}: {rate} Hz, expected 16000")
        truth = self.corpus.truth(clip_id)
        return make_clip(clip_id, samples, truth.offsets, truth.pose, self.style_id(clip_id), self.config)


def neutral_offsets(lmks3d: np.ndarray) -> np.ndarray:
    """(T, 468, 3) per-frame meshes → offsets to the clip's neutral (per-vertex median) mesh.

    The median over frames is the face at rest for a talking clip (the mouth is closed or half
    open most of the time and blinks are brief), robust to the extremes a mean would absorb.
    """
    lmks3d = np.asarray(lmks3d, np.float64)
    if lmks3d.ndim != 3 or lmks3d.shape[1:] != (468, 3):
        raise ValueError(f"lmks3d must be (T, 468, 3), got {lmks3d.shape}")
    return (lmks3d - np.median(lmks3d, axis=0, keepdims=True)).astype(np.float32)


class PreparedAudioDataset(ClipWindowDataset):
    """A prepared dataset of real videos (``prepare_dataset`` output) as Audio2Lmk training items.

    Offsets are ``lmks3d − the clip's median mesh`` (:func:`neutral_offsets`) and the pose is
    relative to the clip's first frame (:func:`~aniportrait_lib.landmarks.pose.relative_poses`).
    Clips without audio are left out.

    Args:
        dataset: a :class:`~aniportrait_lib.data.manifest.PreparedDataset` at 30 fps.
        split: ``"train"`` or ``"heldout"``.
        style_ids: clip id → style id in [0, 100) (e.g. one per speaker); default 0 for every clip.
    """

    def __init__(self, dataset, split: str = "train", config: AudioDatasetConfig | None = None,
                 style_ids: dict[str, int] | None = None):  # fmt: skip
        config = config or AudioDatasetConfig()
        fps = float(dataset.config.get("fps", 0))
        if fps != config.audio.fps:
            raise ValueError(f"{dataset.root}: prepared at {fps} fps, Audio2Lmk needs {config.audio.fps}")
        self.dataset, self.style_ids = dataset, dict(style_ids or {})
        clips = [entry["id"] for entry in dataset.split(split) if entry.get("has_audio")]
        if not clips:
            raise ValueError(f"{dataset.root}: split {split!r} has no prepared clips with audio")
        super().__init__(clips, config)

    def load_clip(self, clip_id: str) -> ClipArrays:
        samples, rate = self.dataset.audio(clip_id)
        if rate != self.config.audio.sampling_rate:
            raise ValueError(f"{self.dataset.root}/{clip_id}: audio at {rate} Hz, expected 16000")
        landmarks = self.dataset.load_landmarks(clip_id)
        offsets = neutral_offsets(landmarks.lmks3d)
        pose = relative_poses(landmarks.trans_mat)
        return make_clip(clip_id, samples, offsets, pose, self.style_ids.get(clip_id, 0), self.config)
