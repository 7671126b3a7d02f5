"""A mini-corpus clip as the kit's Lmk2Video models see it: face-cropped frames and their true landmarks.

The official training videos (VFHQ, CelebV-HQ, HDTF) are face crops in which the face is about half the
frame height. The mini corpus renders a whole upper-body portrait, so every clip is cut to one square
around the face before resizing: :func:`corpus_crop_box`, the portrait's
:func:`~aniportrait_lib.data.face_track.portrait_crop_box`. The box depends only on the portrait, so
training, evaluation and generation all cut the same square.
"""

from __future__ import annotations

import cv2
import numpy as np

from aniportrait_lib.data.face_track import CropBox, crop_frame, portrait_crop_box
from aniportrait_lib.data.mini_corpus import MiniCorpus
from aniportrait_lib.video_io import read_frames

__all__ = ["corpus_crop_box", "load_clip"]


def corpus_crop_box(corpus: MiniCorpus, crop_scale: float | None) -> CropBox | None:
    """The crop every frame of ``corpus`` is cut to (``None`` when ``crop_scale`` is ``None``)."""
    if crop_scale is None:
        return None
    side = int(corpus.config["image_size"])
    return portrait_crop_box(corpus.reference_lmks(), (side, side), crop_scale)


def load_clip(
    corpus: MiniCorpus, clip_id: str, size: int, box: CropBox | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, size, size, 3)`` uint8 and true landmarks ``(T, 468, 2)`` normalised to the output frame.

    Args:
        box: cut this square out of every frame first (:func:`corpus_crop_box`); ``None``: the whole frame.

    Raises:
        ValueError: the video and its truth disagree on the number of frames (names the clip).
    """
    source = int(corpus.config["image_size"])
    lmks = corpus.truth(clip_id).lmks2d.astype(np.float32)
    if box is None:
        frames = [
            cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
            for f in read_frames(corpus.video_path(clip_id))
        ]
        lmks = lmks / source
    else:
        frames = [crop_frame(f, box, size) for f in read_frames(corpus.video_path(clip_id))]
        lmks = (lmks - np.array([box.x0, box.y0], np.float32)) / np.float32(box.side)
    if len(frames) != len(lmks):
        raise ValueError(f"{corpus.video_path(clip_id)}: {len(frames)} frames but {len(lmks)} truth frames")
    return np.stack(frames), lmks
