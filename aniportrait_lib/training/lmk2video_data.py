"""Lmk2Video training and evaluation data from the mini corpus (spec §4, ``FaceDataset``).

Stage 1 trains on **pairs**: a target frame and a reference frame drawn from the same clip, the target's
pose image drawn from the clip's *true* landmarks (``ClipTruth.lmks2d``), the reference's pose image drawn
the same way, and the CLIP input made from the reference frame by ``CLIPImageProcessor()``. Values as
the official dataset: frames ``/127.5 − 1`` ([−1, 1]), pose images ``/127.5 − 1``, no augmentation.

**Face crop.** The official training videos (VFHQ, CelebV-HQ, HDTF) are face crops in which the face is
about half the frame height. The mini corpus renders a whole upper-body portrait, so every clip is cut to
one square around the face before resizing (:func:`~aniportrait_lib.data.corpus_frames.corpus_crop_box`:
the dataset preparation's :func:`~aniportrait_lib.data.face_track.stable_crop_box` applied to the
portrait's landmarks, side = ``crop_scale`` × face height). The box depends only on the portrait, so
inference cuts a user's portrait the same way. ``crop_scale=None`` keeps the whole frame.

The sample order is deterministic and independent of the global RNG: position ``p`` (the p-th sample
the trainer asks for) is sample ``perm_e[p mod N]`` of a permutation seeded with ``seed + e`` for epoch
``e = p // N``, and its reference frame is drawn from a generator seeded with ``(seed, p)``. A resumed
run therefore sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch

from aniportrait_lib.data.corpus_frames import corpus_crop_box, load_clip
from aniportrait_lib.data.face_track import CropConfig
from aniportrait_lib.data.mini_corpus import MiniCorpus
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.mouth import LIP_VERTICES
from aniportrait_lib.models.image_models import build_clip_image_processor

__all__ = [
    "DEFAULT_CROP_SCALE",
    "ClipWindowDataset",
    "EvalClip",
    "FramePairDataset",
    "heldout_clips",
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


class FramePairDataset:
    """Stage-1 pairs from clips held in memory (usually :meth:`from_corpus`).

    Args:
        frames: per clip, uint8 frames ``(T, S, S, 3)``.
        lmks: per clip, true landmarks ``(T, 468, 2)`` normalised to [0, 1].
        image_size: ``S`` (multiple of 8).
        seed: seeds the sample order and the reference-frame choice.
        clip_ids: names of the clips (for messages and tables).
    """

    def __init__(self, frames: list[np.ndarray], lmks: list[np.ndarray], image_size: int, seed: int = 0,
                 clip_ids: list[str] | None = None):  # fmt: skip
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8; got {image_size}")
        if not frames or len(frames) != len(lmks):
            raise ValueError(
                f"need the same non-zero number of frame and landmark clips; got {len(frames)}, {len(lmks)}"
            )
        for clip, (f, l) in enumerate(zip(frames, lmks, strict=True)):
            if f.shape[1:] != (image_size, image_size, 3) or len(f) != len(l) or f.dtype != np.uint8:
                raise ValueError(
                    f"clip {clip}: frames {f.shape} {f.dtype}, landmarks {l.shape}: expected {image_size} px"
                )
        self.image_size, self.seed = image_size, seed
        self.frames, self.lmks = list(frames), list(lmks)
        self.clip_ids = clip_ids or [f"clip{i}" for i in range(len(frames))]
        self.index = [(c, t) for c, f in enumerate(self.frames) for t in range(len(f))]
        self.clip_processor = build_clip_image_processor()

    @classmethod
    def from_corpus(
        cls, corpus: MiniCorpus, image_size: int, split: str = "train", seed: int = 0,
        crop_scale: float | None = DEFAULT_CROP_SCALE, **kwargs,
    ) -> FramePairDataset:  # fmt: skip
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
        return cls([f for f, _ in loaded], [lm for _, lm in loaded], image_size, seed, clip_ids, **kwargs)

    def __len__(self) -> int:
        return len(self.index)

    def _pose(self, clip: int, frame: int) -> np.ndarray:
        return draw_landmarks((self.image_size,) * 2, self.lmks[clip][frame], normed=True)

    def sample_of(self, position: int) -> tuple[int, int, int]:
        """``position`` → (clip index, target frame, reference frame), deterministically."""
        epoch, offset = divmod(position, len(self))
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(self.seed + epoch))
        clip, target = self.index[int(order[offset])]
        ref = int(np.random.default_rng((self.seed, position)).integers(len(self.frames[clip])))
        return clip, target, ref

    def item(self, position: int) -> dict[str, torch.Tensor]:
        """One training pair (module docstring): ``(3, S, S)`` in [−1, 1]; ``clip_pixels (3, 224, 224)``;
        ``lmks (468+, 2)``, the target's normalised landmarks (for a lip-weighted loss)."""
        clip, target, ref = self.sample_of(position)
        ref_frame = self.frames[clip][ref]
        clip_input = PIL.Image.fromarray(ref_frame).resize((224, 224))  # PIL bicubic, as the pipeline
        return {
            "pixel_values": to_unit_range(self.frames[clip][target]),
            "ref_pixel_values": to_unit_range(ref_frame),
            "pose": to_unit_range(self._pose(clip, target)),
            "ref_pose": to_unit_range(self._pose(clip, ref)),
            "clip_pixels": self.clip_processor(images=clip_input, return_tensors="pt").pixel_values[0],
            "lmks": torch.from_numpy(np.asarray(self.lmks[clip][target], np.float32)),
        }

    def batch(self, first_position: int, size: int) -> dict[str, torch.Tensor]:
        """Positions ``first_position .. first_position + size − 1`` stacked → ``(B, ...)`` tensors."""
        items = [self.item(p) for p in range(first_position, first_position + size)]
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}


class ClipWindowDataset(FramePairDataset):
    """Stage-2 samples: ``num_frames`` frames of one clip at a random stride, its reference frame and poses.

    The official ``sample_stride_aug`` picks stride 1 or 4 with equal probability and takes
    ``linspace(start, start + (n−1)·stride, n)``; a stride too long for the clip falls back to the longest
    that fits. All choices come from a generator seeded with ``(seed, position)``.
    """

    def __init__(self, *args, num_frames: int = 16, strides: tuple[int, ...] = (1, 4), **kwargs):
        super().__init__(*args, **kwargs)
        short = [i for i, f in enumerate(self.frames) if len(f) < num_frames]
        if short:
            raise ValueError(f"clips {[self.clip_ids[i] for i in short]} have fewer than {num_frames} frames")
        self.num_frames, self.strides = num_frames, tuple(strides)

    def __len__(self) -> int:
        return len(self.frames)

    def window_of(self, position: int) -> tuple[int, np.ndarray, int]:
        """``position`` → (clip index, frame indices ``(num_frames,)``, reference frame)."""
        rng = np.random.default_rng((self.seed, position))
        clip = int(rng.integers(len(self.frames)))
        length = len(self.frames[clip])
        stride = int(rng.choice(self.strides))
        stride = max(1, min(stride, (length - 1) // max(self.num_frames - 1, 1)))
        span = (self.num_frames - 1) * stride
        start = int(rng.integers(length - span))
        return clip, start + stride * np.arange(self.num_frames), int(rng.integers(length))

    def item(self, position: int) -> dict[str, torch.Tensor]:
        """``pixel_values`` / ``pose`` ``(3, F, S, S)``; ``ref_pixel_values`` / ``ref_pose`` ``(3, S, S)``;
        ``lmks (F, 468+, 2)``."""
        clip, indices, ref = self.window_of(position)
        ref_frame = self.frames[clip][ref]
        clip_input = PIL.Image.fromarray(ref_frame).resize((224, 224))
        poses = np.stack([self._pose(clip, t) for t in indices])
        return {
            "pixel_values": to_unit_range(self.frames[clip][indices]).movedim(0, 1),
            "ref_pixel_values": to_unit_range(ref_frame),
            "pose": to_unit_range(poses).movedim(0, 1),
            "ref_pose": to_unit_range(self._pose(clip, ref)),
            "clip_pixels": self.clip_processor(images=clip_input, return_tensors="pt").pixel_values[0],
            "lmks": torch.from_numpy(np.asarray(self.lmks[clip][indices], np.float32)),
        }


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
    crop_scale: float | None = DEFAULT_CROP_SCALE,
) -> list[EvalClip]:  # fmt: skip
    """Up to ``max_clips`` held-out clips, each with ``frames_per_clip`` evenly spaced target frames.

    Frames are cut as for training (:func:`~aniportrait_lib.data.corpus_frames.corpus_crop_box`).
    """
    clips = []
    box = corpus_crop_box(corpus, crop_scale)
    for spec in corpus.split("heldout")[:max_clips]:
        frames, lmks = load_clip(corpus, spec.clip_id, size, box)
        chosen = np.linspace(1, len(frames) - 1, frames_per_clip).round().astype(int)
        clips.append(
            EvalClip(
                clip_id=spec.clip_id,
                ref_image=frames[0],
                ref_pose=draw_landmarks((size, size), lmks[0], normed=True),
                frame_indices=chosen,
                frames=frames[chosen],
                poses=np.stack([draw_landmarks((size, size), lmks[t], normed=True) for t in chosen]),
                lmks2d=lmks[chosen] * size,
            )
        )
    if not clips:
        raise ValueError(f"the mini corpus in {corpus.root} has no held-out clips")
    return clips
