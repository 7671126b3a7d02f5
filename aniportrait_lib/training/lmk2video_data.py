"""Lmk2Video training and evaluation data (spec §4, ``FaceDataset``) from any clip source.

Stage 1 trains on **pairs**: a target frame and a reference frame drawn from the same clip, the target's
pose image drawn from the clip's landmarks, the reference's pose image drawn the same way, and the CLIP
input made from the reference frame by ``CLIPImageProcessor()``. Stage 2 trains on **windows** of
``num_frames`` frames at a random stride. Values as the official dataset: frames ``/127.5 − 1``
([−1, 1]), pose images ``/127.5 − 1``, no augmentation.

**Sources** (:class:`ClipSource`): a prepared dataset folder (:class:`PreparedSource`, the face crops
``python -m aniportrait_lib.data.prepare`` made from real video, read lazily by seeking; nothing per clip
is held in memory) or clips held in memory (:class:`ArraySource`; the mini corpus through
:meth:`FramePairDataset.from_corpus`, whose landmarks are the renderer's *true* ones).

**Face crop.** The official training videos (VFHQ, CelebV-HQ, HDTF) are face crops in which the face is
about half the frame height; prepared datasets are cut that way. The mini corpus renders a whole upper-body
portrait, so every clip is cut to one square around the face before resizing
(:func:`~aniportrait_lib.data.corpus_frames.corpus_crop_box`: the dataset preparation's
:func:`~aniportrait_lib.data.face_track.stable_crop_box` applied to the portrait's landmarks, side =
``crop_scale`` × face height). The box depends only on the portrait, so inference cuts a user's portrait
the same way. ``crop_scale=None`` keeps the whole frame.

The sample order is deterministic and independent of the global RNG: position ``p`` (the p-th sample
of the run; :mod:`~aniportrait_lib.training.sampling` says which positions each process takes) is sample
``perm_e[p mod N]`` of a permutation seeded with ``seed + e`` for epoch ``e = p // N``, and its reference
frame is drawn from a generator seeded with ``(seed, p)``. A resumed run therefore sees exactly the
samples an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import torch
from torch.utils.data import Dataset, default_collate

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip
from aniportrait_lib.data.face_track import CropConfig
from aniportrait_lib.data.manifest import (
    CLIPS_DIR,
    FRAMES_NAME,
    LANDMARKS_NAME,
    MANIFEST_NAME,
    PreparedDataset,
)
from aniportrait_lib.data.mini_corpus import MiniCorpus
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.mouth import LIP_VERTICES
from aniportrait_lib.models.image_models import build_clip_image_processor
from aniportrait_lib.video_io import read_frames_at

__all__ = [
    "DEFAULT_CROP_SCALE",
    "ArraySource",
    "ClipSource",
    "ClipWindowDataset",
    "EvalClip",
    "FramePairDataset",
    "PreparedSource",
    "eval_clip",
    "HeldOutClips",
    "evaluation_clips",
    "heldout_clips",
    "prepared_heldout_clips",
    "target_frames",
    "mouth_weight_map",
    "pose_image",
    "to_unit_range",
]


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` → float ``(..., 3, H, W)`` in [−1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).float() / 127.5 - 1.0


def pose_image(lmks2d: np.ndarray, source_size: int, size: int) -> np.ndarray:
    """Official pose image ``(size, size, 3)`` uint8 of ``(468, 2)`` landmarks (pixels of ``source_size``)."""
    return draw_landmarks((size, size), np.asarray(lmks2d) / float(source_size), normed=True)


DEFAULT_CROP_SCALE = CropConfig().scale
"""Crop side / face height for Lmk2Video frames: the dataset preparation's value (face ≈ half the frame)."""


class ClipSource:
    """Where training clips come from: face-cropped frames and their normalised landmarks, clip by clip.

    Two sources share this interface: :class:`ArraySource` (clips held in memory: the mini corpus, tests)
    and :class:`PreparedSource` (a folder made by ``python -m aniportrait_lib.data.prepare``, read lazily).
    Indices are ``(clip, frame)``; frames come back at the source's ``image_size``.
    """

    image_size: int
    clip_ids: list[str]
    lengths: np.ndarray  # (n_clips,) int64 frames per clip

    def frames(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 RGB frames of clip ``clip``."""
        raise NotImplementedError

    def landmarks(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        """``(N, 468+, 2)`` float32 landmarks normalised to the frame ([0, 1])."""
        raise NotImplementedError

    def sample_frames(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(N, S, S, 3)`` and landmarks ``(N, 468+, 2)`` for fitting a VAE: all frames, or up to
        ``limit`` evenly spaced over the whole source."""
        flat = np.arange(int(self.lengths.sum()))
        if limit is not None and len(flat) > limit:
            flat = np.linspace(0, len(flat) - 1, limit).round().astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        clips = np.searchsorted(starts, flat, side="right") - 1
        frames, lmks = [], []
        for clip in np.unique(clips):
            chosen = (flat[clips == clip] - starts[clip]).tolist()
            frames.append(self.frames(int(clip), chosen))
            lmks.append(self.landmarks(int(clip), chosen))
        return np.concatenate(frames), np.concatenate(lmks)


class ArraySource(ClipSource):
    """Clips held in memory.

    Args:
        frames: per clip, uint8 frames ``(T, S, S, 3)``.
        lmks: per clip, true landmarks ``(T, 468, 2)`` normalised to [0, 1].
        image_size: ``S``.
        clip_ids: names of the clips (for messages and tables).
    """

    def __init__(self, frames: list[np.ndarray], lmks: list[np.ndarray], image_size: int,
                 clip_ids: list[str] | None = None):  # fmt: skip
        if not frames or len(frames) != len(lmks):
            raise ValueError(
                f"need the same non-zero number of frame and landmark clips; got {len(frames)}, {len(lmks)}"
            )
        for clip, (f, l) in enumerate(zip(frames, lmks, strict=True)):
            if f.shape[1:] != (image_size, image_size, 3) or len(f) != len(l) or f.dtype != np.uint8:
                raise ValueError(
                    f"clip {clip}: frames {f.shape} {f.dtype}, landmarks {l.shape}: expected {image_size} px"
                )
        self.image_size, self.all_frames, self.all_lmks = image_size, list(frames), list(lmks)
        self.clip_ids = clip_ids or [f"clip{i}" for i in range(len(frames))]
        self.lengths = np.array([len(f) for f in frames], np.int64)

    def frames(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        return self.all_frames[clip][np.asarray(indices, np.int64)]

    def landmarks(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        return np.asarray(self.all_lmks[clip][np.asarray(indices, np.int64)], np.float32)

    def sample_frames(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if limit is None or limit >= self.lengths.sum():  # all frames, without a copy per clip
            return np.concatenate(self.all_frames), np.concatenate(self.all_lmks)
        return super().sample_frames(limit)


class PreparedSource(ClipSource):
    """One split of a prepared dataset folder, read lazily (nothing per clip is held but a small cache).

    Frames are the prepared face crops (``clips/<id>/frames.mp4``), decoded by seeking
    (:func:`~aniportrait_lib.video_io.read_frames_at`) and resized to ``image_size`` when the dataset was
    prepared at another size; landmarks are ``landmarks.npz``'s ``lmks[..., :2]`` (already normalised to
    the crop). The landmarks of the last ``cache_clips`` clips used are kept (per process: each DataLoader
    worker has its own), so memory does not grow with the number of clips.

    Raises:
        ValueError: the folder is not a prepared dataset, or the split has no clips (names the folder).
    """

    def __init__(self, root: str | Path, image_size: int, split: str = "train", min_frames: int = 1,
                 cache_clips: int = 4):  # fmt: skip
        self.root = Path(root)
        if not (self.root / MANIFEST_NAME).is_file():
            raise ValueError(
                f"{self.root} is not a prepared dataset (no {MANIFEST_NAME}): make one with "
                "python -m aniportrait_lib.data.prepare VIDEOS_DIR OUTPUT_DIR"
            )
        self.dataset = PreparedDataset(self.root)
        clips = [c for c in self.dataset.split(split) if int(c["n_frames"]) >= min_frames]
        if not clips:
            raise ValueError(
                f"the prepared dataset {self.root} has no {split!r} clips with at least {min_frames} frames"
            )
        self.image_size, self.cache_clips = image_size, cache_clips
        self.clip_ids = [c["id"] for c in clips]
        self.lengths = np.array([int(c["n_frames"]) for c in clips], np.int64)
        self._cache: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_cache": {}}  # DataLoader workers start with an empty cache

    def frames(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        path = self.root / CLIPS_DIR / self.clip_ids[clip] / FRAMES_NAME
        frames = read_frames_at(path, indices)
        if frames.shape[1] != self.image_size or frames.shape[2] != self.image_size:
            size = (self.image_size, self.image_size)
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        return frames

    def landmarks(self, clip: int, indices: Sequence[int]) -> np.ndarray:
        if clip not in self._cache:
            path = self.root / CLIPS_DIR / self.clip_ids[clip] / LANDMARKS_NAME
            with np.load(path) as arrays:  # only "lmks" is decompressed, not the whole ClipLandmarks
                lmks = arrays["lmks"][..., :2].astype(np.float32)
            if len(lmks) != self.lengths[clip]:
                raise ValueError(
                    f"{self.root}: clip {self.clip_ids[clip]} has {len(lmks)} landmark rows but "
                    f"{self.lengths[clip]} frames in the manifest"
                )
            while len(self._cache) >= self.cache_clips:
                self._cache.pop(next(iter(self._cache)))
            self._cache[clip] = lmks
        return self._cache[clip][np.asarray(indices, np.int64)]


class FramePairDataset(Dataset):
    """Stage-1 pairs drawn from a :class:`ClipSource`, indexed by position (module docstring).

    A map-style ``torch.utils.data.Dataset`` whose index is the *position* (the p-th sample of the run, any
    non-negative integer; epochs follow one another): feed it to a ``DataLoader`` with a
    :class:`~aniportrait_lib.training.sampling.PositionSampler`.

    Every sample also carries ``frame_ids``: the flat indices in the source (clip after clip) of its frames,
    targets first, reference last, for a trainer that looks up what the frozen models made of each frame
    (:class:`~.lmk2video_cache.FrameCache`); such a trainer sets ``clip_pixels = False`` on its copy of the
    dataset, and the CLIP input is not prepared at every step.

    Args:
        source: the clips. image_size: ``S`` of the source's frames (multiple of 8).
        seed: seeds the sample order and the reference-frame choice.
    """

    clip_pixels: bool = True
    """Whether samples carry ``clip_pixels`` (False: the trainer reads the CLIP embeddings from a cache)."""

    def __init__(self, source: ClipSource, seed: int = 0):
        if source.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8; got {source.image_size}")
        self.source, self.image_size, self.seed = source, source.image_size, seed
        self.starts = np.concatenate([[0], np.cumsum(source.lengths)[:-1]]).astype(np.int64)
        self.clip_processor = build_clip_image_processor()
        self._order: tuple[int, torch.Tensor] | None = None
        # pose images are a function of the frame: drawn once per frame when the frames are in memory
        # anyway (the mini corpus: 27 KB per 96² frame), drawn every time for a prepared folder
        self._poses: dict[int, np.ndarray] | None = {} if isinstance(source, ArraySource) else None

    @classmethod
    def from_arrays(cls, frames: list[np.ndarray], lmks: list[np.ndarray], image_size: int, seed: int = 0,
                    clip_ids: list[str] | None = None, **kwargs):  # fmt: skip
        """Clips held in memory (:class:`ArraySource`); ``kwargs`` go to the constructor."""
        return cls(ArraySource(frames, lmks, image_size, clip_ids), seed=seed, **kwargs)

    @classmethod
    def from_corpus(
        cls, corpus: MiniCorpus, image_size: int, split: str = "train", seed: int = 0,
        crop_scale: float | None = DEFAULT_CROP_SCALE, **kwargs,
    ):  # fmt: skip
        """All frames of one split (``"train"`` / ``"heldout"``) of a mini corpus at ``image_size``.

        Frames are face crops (:func:`~aniportrait_lib.data.corpus_frames.corpus_crop_box`;
        ``crop_scale=None``: whole frames); ``kwargs`` go to the constructor (e.g. ``num_frames`` of
        :class:`ClipWindowDataset`).
        """
        clip_ids = [c.clip_id for c in corpus.split(split)]
        if not clip_ids:
            raise ValueError(f"the mini corpus in {corpus.root} has no {split!r} clips")
        box = corpus_crop_box(corpus, crop_scale)
        loaded = [load_clip(corpus, clip_id, image_size, box) for clip_id in clip_ids]
        return cls.from_arrays([f for f, _ in loaded], [lm for _, lm in loaded], image_size, seed, clip_ids,
                               **kwargs)  # fmt: skip

    @classmethod
    def from_prepared(cls, root: str | Path, image_size: int, split: str = "train", seed: int = 0, **kwargs):
        """One split of a prepared dataset folder (:class:`PreparedSource`), read lazily, at ``image_size``
        (the prepared face crops are used as they are, resized if prepared at another size)."""
        min_frames = kwargs.get("num_frames", 1)
        return cls(PreparedSource(root, image_size, split, min_frames=min_frames), seed=seed, **kwargs)

    @property
    def clip_ids(self) -> list[str]:
        return self.source.clip_ids

    def __len__(self) -> int:
        return int(self.source.lengths.sum())

    def _pose(self, lmks: np.ndarray) -> np.ndarray:
        return draw_landmarks((self.image_size,) * 2, lmks, normed=True)

    def _poses_of(self, clip: int, indices: Sequence[int], lmks: np.ndarray) -> list[np.ndarray]:
        """Pose images of frames ``indices`` of ``clip`` (``lmks``: their landmarks), cached per frame."""
        if self._poses is None:
            return [self._pose(lm) for lm in lmks]
        flat = [int(self.starts[clip]) + int(i) for i in indices]
        for key, lm in zip(flat, lmks, strict=True):
            if key not in self._poses:
                self._poses[key] = self._pose(lm)
        return [self._poses[key] for key in flat]

    def frame_ids(self, clip: int, indices: Sequence[int]) -> torch.Tensor:
        """Flat indices in the source (clip after clip) of frames ``indices`` of ``clip`` → ``(N,)`` int64."""
        return torch.as_tensor(np.asarray(indices, np.int64) + self.starts[clip])

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if self._order is None or self._order[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._order = (epoch, torch.randperm(len(self), generator=generator))
        return self._order[1]

    def sample_of(self, position: int) -> tuple[int, int, int]:
        """``position`` → (clip index, target frame, reference frame), deterministically."""
        epoch, offset = divmod(position, len(self))
        flat = int(self._epoch_order(epoch)[offset])
        clip = int(np.searchsorted(self.starts, flat, side="right")) - 1
        target = flat - int(self.starts[clip])
        ref = int(np.random.default_rng((self.seed, position)).integers(int(self.source.lengths[clip])))
        return clip, target, ref

    def clip_input(self, ref_frame: np.ndarray) -> torch.Tensor:
        """CLIP input ``(3, 224, 224)`` of a uint8 reference frame ``(S, S, 3)``, as the pipeline makes it."""
        clip_input = PIL.Image.fromarray(ref_frame).resize((224, 224))  # PIL bicubic, as the pipeline
        return self.clip_processor(images=clip_input, return_tensors="pt").pixel_values[0]

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        """One training pair (module docstring): ``(3, S, S)`` in [−1, 1]; ``clip_pixels (3, 224, 224)``;
        ``lmks (468+, 2)``, the target's normalised landmarks (for a lip-weighted loss); ``frame_ids (2,)``
        (target, reference)."""
        clip, target, ref = self.sample_of(int(position))
        frames = self.source.frames(clip, [target, ref])
        lmks = self.source.landmarks(clip, [target, ref])
        pose, ref_pose = self._poses_of(clip, [target, ref], lmks)
        sample = {
            "pixel_values": to_unit_range(frames[0]),
            "ref_pixel_values": to_unit_range(frames[1]),
            "pose": to_unit_range(pose),
            "ref_pose": to_unit_range(ref_pose),
            "lmks": torch.from_numpy(np.asarray(lmks[0], np.float32)),
            "frame_ids": self.frame_ids(clip, [target, ref]),
        }
        if self.clip_pixels:
            sample["clip_pixels"] = self.clip_input(frames[1])
        return sample

    def batch(self, positions: Sequence[int]) -> dict[str, torch.Tensor]:
        """The samples at ``positions`` stacked → ``(B, ...)`` tensors (as a ``DataLoader`` batch)."""
        return default_collate([self[p] for p in positions])


class ClipWindowDataset(FramePairDataset):
    """Stage-2 samples: ``num_frames`` frames of one clip at a random stride, its reference frame and poses.

    The official ``sample_stride_aug`` picks stride 1 or 4 with equal probability and takes
    ``linspace(start, start + (n−1)·stride, n)``; a stride too long for the clip falls back to the longest
    that fits. All choices come from a generator seeded with ``(seed, position)``.
    """

    def __init__(
        self, source: ClipSource, seed: int = 0, num_frames: int = 16, strides: tuple[int, ...] = (1, 4)
    ):
        super().__init__(source, seed)
        short = [source.clip_ids[i] for i, n in enumerate(source.lengths) if n < num_frames]
        if short:
            raise ValueError(f"clips {short} have fewer than {num_frames} frames")
        self.num_frames, self.strides = num_frames, tuple(strides)

    def __len__(self) -> int:
        return len(self.source.lengths)

    def window_of(self, position: int) -> tuple[int, np.ndarray, int]:
        """``position`` → (clip index, frame indices ``(num_frames,)``, reference frame)."""
        rng = np.random.default_rng((self.seed, position))
        clip = int(rng.integers(len(self.source.lengths)))
        length = int(self.source.lengths[clip])
        stride = int(rng.choice(self.strides))
        stride = max(1, min(stride, (length - 1) // max(self.num_frames - 1, 1)))
        span = (self.num_frames - 1) * stride
        start = int(rng.integers(length - span))
        return clip, start + stride * np.arange(self.num_frames), int(rng.integers(length))

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        """``pixel_values`` / ``pose`` ``(3, F, S, S)``; ``ref_pixel_values`` / ``ref_pose`` ``(3, S, S)``;
        ``lmks (F, 468+, 2)``; ``frame_ids (F + 1,)`` (targets, then the reference)."""
        clip, indices, ref = self.window_of(int(position))
        wanted = [*indices.tolist(), ref]
        frames, lmks = self.source.frames(clip, wanted), self.source.landmarks(clip, wanted)
        poses = self._poses_of(clip, wanted, lmks)
        sample = {
            "pixel_values": to_unit_range(frames[:-1]).movedim(0, 1),
            "ref_pixel_values": to_unit_range(frames[-1]),
            "pose": to_unit_range(np.stack(poses[:-1])).movedim(0, 1),
            "ref_pose": to_unit_range(poses[-1]),
            "lmks": torch.from_numpy(np.asarray(lmks[:-1], np.float32)),
            "frame_ids": self.frame_ids(clip, wanted),
        }
        if self.clip_pixels:
            sample["clip_pixels"] = self.clip_input(frames[-1])
        return sample


def mouth_weight_map(lmks: np.ndarray, size: int, weight: float) -> torch.Tensor:
    """Per-pixel loss weights ``(N, 1, S, S)``: 1, plus ``weight`` times a Gaussian bump over the lips.

    Args:
        lmks: ``(N, 468+, 2)`` landmarks normalised to [0, 1] (MediaPipe indexing).
        size: ``S``, the side of the square frames.
    Returns:
        The bump is centred on the mean of the lip vertices, with a radius of 0.75 × the larger side of their
        bounding box (weight/e at that distance).
    """
    lips = np.asarray(lmks, np.float64)[:, list(LIP_VERTICES)] * size  # (N, L, 2) pixels
    centre = lips.mean(axis=1)
    radius = np.maximum(np.ptp(lips, axis=1).max(axis=-1) * 0.75, 1.0)
    grid = np.arange(size) + 0.5
    dx = (grid[None, None, :] - centre[:, 0, None, None]) / radius[:, None, None]
    dy = (grid[None, :, None] - centre[:, 1, None, None]) / radius[:, None, None]
    bump = np.exp(-(dx**2 + dy**2))
    return torch.from_numpy(1.0 + weight * bump).float()[:, None]


@dataclass
class EvalClip:
    """One held-out clip prepared for evaluation at ``size``: reference = frame 0, targets after it."""

    clip_id: str
    ref_image: np.ndarray  # (S, S, 3) uint8, frame 0
    ref_pose: np.ndarray  # (S, S, 3) uint8, drawn from frame 0's true landmarks
    frame_indices: np.ndarray  # (N,) indices of the target frames in the clip
    frames: np.ndarray  # (N, S, S, 3) uint8 ground-truth frames
    poses: np.ndarray  # (N, S, S, 3) uint8 pose images drawn from the true landmarks
    lmks2d: np.ndarray  # (N, 468, 2) true landmarks in pixels of S


def heldout_clips(
    corpus: MiniCorpus, size: int, frames_per_clip: int, max_clips: int,
    crop_scale: float | None = DEFAULT_CROP_SCALE, consecutive: bool = False,
) -> list[EvalClip]:  # fmt: skip
    """Up to ``max_clips`` held-out clips of the mini corpus, each with ``frames_per_clip`` target frames:
    evenly spaced over the clip, or the frames right after the reference (``consecutive``: 1, 2, …).

    Frames are cut as for training (:func:`~aniportrait_lib.data.corpus_frames.corpus_crop_box`); the
    landmarks are the renderer's true ones.

    Raises:
        ValueError: the corpus has no held-out clips, or one is too short (names it).
    """
    clips = []
    box = corpus_crop_box(corpus, crop_scale)
    for spec in corpus.split("heldout")[:max_clips]:
        frames, lmks = load_clip(corpus, spec.clip_id, size, box)
        chosen = target_frames(len(frames), frames_per_clip, consecutive, spec.clip_id)
        clips.append(eval_clip(spec.clip_id, frames[[0, *chosen]], lmks[[0, *chosen]], chosen, size))
    if not clips:
        raise ValueError(f"the mini corpus in {corpus.root} has no held-out clips")
    return clips


def prepared_heldout_clips(
    root: str | Path, size: int, frames_per_clip: int, max_clips: int, consecutive: bool = False
) -> list[EvalClip]:
    """:func:`heldout_clips` of a prepared dataset: up to ``max_clips`` of its ``heldout`` split long
    enough for the targets, with the prepared face crops and the landmarks MediaPipe found in them (the
    truth a model trained on that dataset was given). Only the frames used are decoded.

    Raises:
        ValueError: ``root`` is not a prepared dataset or has no held-out clip of ``frames_per_clip + 1``
            frames (the message names the folder).
    """
    source = PreparedSource(root, size, "heldout", min_frames=frames_per_clip + 1)
    clips = []
    for clip in range(min(max_clips, len(source.clip_ids))):
        chosen = target_frames(int(source.lengths[clip]), frames_per_clip, consecutive, source.clip_ids[clip])
        used = [0, *chosen]
        frames, lmks = source.frames(clip, used), source.landmarks(clip, used)
        clips.append(eval_clip(source.clip_ids[clip], frames, lmks, chosen, size))
    return clips


@dataclass
class HeldOutClips:
    """What :func:`evaluation_clips` chose: the clips, where they come from, and that in one line."""

    clips: list[EvalClip]
    source: MiniCorpus | PreparedDataset  # its ``audio(clip_id)`` is a clip's speech (samples, rate)
    description: str


def evaluation_clips(
    corpus: MiniCorpus, dataset: str | Path | None, size: int, frames_per_clip: int, max_clips: int,
    crop_scale: float | None = DEFAULT_CROP_SCALE, consecutive: bool = False,
) -> HeldOutClips:  # fmt: skip
    """The held-out clips to score a model trained on ``dataset`` (a prepared folder; None: the mini corpus).

    A model trained on your own videos is scored on their held-out clips (:func:`prepared_heldout_clips`);
    when the dataset has none long enough (e.g. prepared with ``--held-out 0``), on the mini corpus's, and
    the description says so.
    """
    note = ""
    if dataset is not None:
        try:
            clips = prepared_heldout_clips(dataset, size, frames_per_clip, max_clips, consecutive)
            described = f"{len(clips)} held-out clip(s) of {dataset}"
            return HeldOutClips(clips, PreparedDataset(dataset), described)
        except ValueError as error:
            note = f" ({error})"
    clips = heldout_clips(corpus, size, frames_per_clip, max_clips, crop_scale, consecutive)
    return HeldOutClips(clips, corpus, f"{len(clips)} held-out clip(s) of the mini corpus{note}")


def target_frames(length: int, count: int, consecutive: bool, clip_id: str = "") -> np.ndarray:
    """Indices of ``count`` target frames in a clip of ``length`` (frame 0 is the reference): evenly spaced
    from 1 to the last frame, or ``1 … count`` (``consecutive``: flicker lives between neighbours)."""
    if length <= count:
        raise ValueError(f"held-out clip {clip_id} has {length} frames; need {count + 1}")
    if consecutive:
        return np.arange(1, count + 1)
    return np.linspace(1, length - 1, count).round().astype(int)


def eval_clip(clip_id: str, frames: np.ndarray, lmks: np.ndarray, chosen: np.ndarray, size: int) -> EvalClip:
    """An :class:`EvalClip` from the reference's and the targets' frames and normalised landmarks
    (``frames[0]``/``lmks[0]``: the reference, then the targets ``chosen``, in order)."""
    poses = np.stack([draw_landmarks((size, size), points, normed=True) for points in lmks])
    return EvalClip(
        clip_id=clip_id, ref_image=frames[0], ref_pose=poses[0], frame_indices=np.asarray(chosen),
        frames=frames[1:], poses=poses[1:], lmks2d=lmks[1:, :468] * size,
    )  # fmt: skip
