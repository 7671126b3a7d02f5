"""The reference portrait every generation mode starts from: the image at the output size and its face.

As the official scripts do, the portrait is resized to the output ``W × H`` and MediaPipe finds its face
there: the canonical mesh ``lmks3d`` and ``trans_mat`` that Audio2Mesh offsets and head poses are applied
to, and its own pose image. MediaPipe still finds the sample portrait's face at 64 × 64 (enlarging such a
small image does not bring ``lmks3d`` closer to the full-resolution result); outputs smaller than the
extractor's minimum side (64 px) are enlarged to it for detection only.

One kit addition, ``GenerateConfig.face_crop_scale``: kit Lmk2Video models are trained on face crops of the
mini corpus (a square of ``face_crop_scale`` × the face height,
:func:`~aniportrait_lib.data.face_track.portrait_crop_box`), so the portrait is first cut the same
way, at its own resolution. ``None`` (official): the user frames the portrait.

With a crop larger than a square output, MediaPipe finds the face in the crop before it is shrunk: normalised
landmarks, canonical mesh and pose are the same for any size of a square image, and more pixels make them
more precise. Measured on the cpu mini corpus (96² output, 176² crop), landmarks projected from the true
mesh and pose are 0.17 px from the truth instead of 0.47 px when found at 96².
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from aniportrait_lib.data.face_track import crop_frame, portrait_crop_box
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.landmarks.image_input import read_rgb_image, to_rgb_uint8

__all__ = ["Portrait", "face_crop", "load_portrait", "reference_pose_image"]


@dataclass(frozen=True)
class Portrait:
    """The reference portrait at the output size, with its landmarks (what every mode starts from)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, resized to the output size as the official scripts do
    lmks3d: np.ndarray  # (468, 3) canonical mesh
    trans_mat: np.ndarray  # (4, 4) canonical → camera
    pose_image: np.ndarray  # (H, W, 3) its own pose image


def reference_pose_image(face, size: tuple[int, int]) -> np.ndarray:
    """The portrait's own pose image, drawn from its MediaPipe ``lmks`` (normalised), as official."""
    return draw_landmarks(size, face.lmks, normed=True)


def _detect(rgb: np.ndarray, extractor, where: str):
    """MediaPipe on ``rgb`` (H, W, 3); an image below the extractor's minimum side is enlarged to it first."""
    height, width = rgb.shape[:2]
    scale = max(1.0, extractor.config.min_side / min(width, height))
    if scale > 1:
        size = (math.ceil(width * scale), math.ceil(height * scale))
        rgb = np.asarray(PIL.Image.fromarray(rgb).resize(size, PIL.Image.Resampling.LANCZOS))
    return extractor.detect(rgb, "rgb", where=where)


def face_crop(rgb: np.ndarray, scale: float, extractor, where: str = "<portrait>") -> np.ndarray:
    """The square around the face of ``rgb`` (H, W, 3) uint8 that kit models are trained on, at its own
    resolution (``side × side``; what lies outside the image is black, as in dataset preparation).

    The box is the training data's (:func:`~aniportrait_lib.data.face_track.portrait_crop_box`).
    """
    face = _detect(rgb, extractor, where)
    box = portrait_crop_box(face.lmks, (rgb.shape[1], rgb.shape[0]), scale)
    return crop_frame(rgb, box, box.side)


def load_portrait(image: str | Path | np.ndarray, config, extractor=None) -> Portrait:
    """Read (if a path), convert to RGB, face-crop (if configured), resize to the output size, find the face.

    A file is read like :meth:`~aniportrait_lib.landmarks.extract.LandmarkExtractor.detect_file` reads it
    (:func:`~aniportrait_lib.landmarks.image_input.read_image`: upright by its EXIF orientation; 16-bit,
    palette, greyscale and alpha files to 8-bit RGB). With several faces the largest is used and a
    ``UserWarning`` names the file and how many faces were found.

    Args:
        image: a file path, or an (H, W, 3) uint8 RGB array ((H, W) greyscale and RGBA are converted; any
            other dtype raises).
        config: a :class:`~aniportrait_lib.pipelines.generate.GenerateConfig` (size, detection, crop).
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor` to reuse (else one is
            made and closed).

    Raises:
        ValueError: unreadable image or no face (the message names the file).
    """
    if isinstance(image, (str, Path)):
        where, rgb = str(image), read_rgb_image(image)
    else:
        where = "the portrait array"
        rgb = to_rgb_uint8(np.asarray(image), "rgb", min_side=1, where=where)  # a 16-bit array raises
    own = extractor is None
    extractor = extractor or LandmarkExtractor()
    size = (config.width, config.height)
    face = None
    try:
        if config.face_crop_scale is not None:
            rgb = face_crop(rgb, config.face_crop_scale, extractor, where)
            if config.width == config.height and len(rgb) > config.width:
                face = _detect(rgb, extractor, where)  # the square crop's face, at its own resolution
        rgb = np.asarray(PIL.Image.fromarray(rgb).resize(size, PIL.Image.Resampling.LANCZOS))
        if face is None:
            face = _detect(rgb, extractor, where)
    finally:
        if own:
            extractor.close()
    return Portrait(rgb, face.lmks3d.astype(np.float64), face.trans_mat, reference_pose_image(face, size))
