"""Bring images into the one layout the landmark extractor runs on: (H, W, 3) uint8 RGB.

Accepted inputs, by array shape (``channel_order`` says how to read 3- and 4-channel arrays; the
official AniPortrait extractor takes BGR uint8, e.g. straight from ``cv2.imread``):

| shape | treated as | conversion |
|---|---|---|
| (H, W) or (H, W, 1) | greyscale | replicated to 3 channels |
| (H, W, 3) | BGR or RGB | channels reversed if BGR |
| (H, W, 4) | BGRA or RGBA | alpha dropped (not composited), then as above |

Only uint8 is accepted (a float or 16-bit array raises: the caller knows its range, we don't).

Image **files** are read by :func:`read_image` (and :func:`read_rgb_image`), the one reader of the kit
(``LandmarkExtractor.detect_file`` and the generation pipelines' portraits both use it): OpenCV decodes
PNG, JPEG, WebP, BMP, TIFF, GIF ...; 16-bit files are scaled by ``/257`` (Pillow's ``convert("RGB")``
clips a 16-bit greyscale PNG to white); palette images are expanded; an alpha channel is dropped (not
composited, as ``cv2.imread`` does in the official code); the EXIF orientation is applied, so a phone
photo stored sideways is read upright.
Images with a side under ``min_side`` pixels are rejected: MediaPipe's detector works at 128 px
and its landmark model at 256 px, so a smaller face carries no usable detail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

ChannelOrder = Literal["bgr", "rgb"]

MIN_SIDE = 64
"""Default smallest accepted image side, pixels."""


def to_rgb_uint8(
    image: np.ndarray,
    channel_order: ChannelOrder = "bgr",
    min_side: int = MIN_SIDE,
    where: str = "<array>",
) -> np.ndarray:
    """Return a contiguous (H, W, 3) uint8 RGB copy of ``image`` (see the module table).

    Args:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array.
        channel_order: "bgr" (official, OpenCV) or "rgb" for 3/4-channel input.
        min_side: reject images whose height or width is smaller, pixels.
        where: file / frame description used in error messages.

    Raises:
        ValueError: wrong dtype, shape or size, naming ``where``.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{where}: expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"{where}: expected (H, W[, 1|3|4]) image, got shape {array.shape}")
    if min(array.shape[:2]) < min_side:
        raise ValueError(f"{where}: image {array.shape[1]}x{array.shape[0]} is smaller than {min_side} px")
    array = array[:, :, :3]
    if channel_order == "bgr":
        array = array[:, :, ::-1]
    elif channel_order != "rgb":
        raise ValueError(f"{where}: channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    return np.ascontiguousarray(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file upright as uint8 greyscale (H, W) or BGR (H, W, 3), for :func:`to_rgb_uint8`.

    Grey files stay (H, W); colour, palette and alpha files give BGR (alpha dropped); 16-bit files are
    scaled by ``/257``; the EXIF orientation is applied (see the module docstring).

    Raises:
        ValueError: missing, empty or undecodable file, or an unsupported pixel type (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    data = np.fromfile(path, dtype=np.uint8)
    # ANYDEPTH keeps 16 bits (scaled below, not clipped); ANYCOLOR keeps grey as one channel and turns
    # palette / alpha images into BGR; unlike IMREAD_UNCHANGED, both apply the EXIF orientation.
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise ValueError(f"{path}: not a decodable image (corrupt or unsupported format)")
    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: unsupported pixel type {image.dtype} (expected 8 or 16 bits per channel)")
    return image


def read_rgb_image(path: str | Path) -> np.ndarray:
    """Read an image file (:func:`read_image`) as (H, W, 3) uint8 RGB, of any size.

    Raises:
        ValueError: missing, empty, undecodable or unsupported file (the message names it).
    """
    return to_rgb_uint8(read_image(path), "bgr", min_side=1, where=str(path))
