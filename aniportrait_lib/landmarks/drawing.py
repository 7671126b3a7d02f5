"""Render landmarks as AniPortrait "pose images": coloured face-contour lines on black.

The official ``FaceMeshVisualizer.draw_landmarks`` always draws on a 512×512 canvas and then resizes
to the requested size; this module reproduces it pixel for pixel (spec §1.3):

* landmark → pixel ``(min(floor(x·512), 511), min(floor(y·512), 511))`` with x, y first stored as
  float32 (the official code passes them through a protobuf); a landmark outside [0, 1] is dropped
  and every edge touching it is skipped;
* each edge is one ``cv2.line`` of thickness 2 (8-connected), in the order of
  :func:`aniportrait_lib.landmarks.connections.pose_image_edges`; later lines overwrite earlier;
* no dots, no irises, no nose, no forehead (options below add irises / the full oval for studies);
* ``cv2.resize`` (bilinear) to ``image_size``.

One kit default differs, and only below 512 px: the resize averages (``cv2.INTER_AREA``) instead of
interpolating. A bilinear downscale reads each output pixel from the 2×2 canvas pixels nearest its
centre, so at 96 px (the small profiles) the 2-px lines fall between those samples more often than not:
contours come out as dashes that appear and vanish as a landmark moves by a fraction of a pixel, and
the lips, whose opening spans a pixel or two at that size, turn to flicker. Averaging keeps every line,
its intensity following sub-pixel motion. At 512 px (the paper) both give the canvas itself;
``PoseDrawingConfig(resize="linear")`` reproduces the official images at any size.

Colours are written in array channel order; the pose image is consumed as an array by the network
(do not convert it BGR↔RGB in between).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from aniportrait_lib.landmarks.connections import pose_image_edges


@dataclass(frozen=True)
class PoseDrawingConfig:
    """How pose images are drawn (defaults = official ``draw_util.py``)."""

    canvas_size: int = 512
    """Side of the square canvas the lines are drawn on before resizing (official: 512)."""
    thickness: int = 2
    """``cv2.line`` thickness in canvas pixels (official ``f_thick = 2``)."""
    forehead: bool = False
    """Draw MediaPipe's full face oval instead of the jaw/cheek contour (official: False)."""
    irises: bool = False
    """Also draw the iris rings, landmarks 468–477 (official: False)."""
    resize: str = "area"
    """Resize from the canvas: ``"area"`` (kit: averages) or ``"linear"`` (official); equal at 512 px."""


_RESIZE = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def _pixel(value: float, size: int) -> int | None:
    """Official normalised → pixel rule; None for a value outside [0, 1]."""
    if not (value >= 0.0 or math.isclose(0.0, value)) or not (value <= 1.0 or math.isclose(1.0, value)):
        return None
    return min(math.floor(value * size), size - 1)


def landmark_pixels(points: np.ndarray, size: int) -> dict[int, tuple[int, int]]:
    """Index → canvas pixel for every landmark with x, y inside [0, 1] (others are left out)."""
    xy = np.asarray(points, dtype=np.float32)[:, :2].astype(np.float64)
    pixels = {}
    for index, (x, y) in enumerate(xy):
        px, py = _pixel(x, size), _pixel(y, size)
        if px is not None and py is not None:
            pixels[index] = (px, py)
    return pixels


def draw_landmarks(
    image_size: tuple[int, int],
    keypoints: np.ndarray,
    normed: bool = False,
    config: PoseDrawingConfig = PoseDrawingConfig(),
) -> np.ndarray:
    """Draw one pose image (official ``FaceMeshVisualizer.draw_landmarks``).

    Args:
        image_size: (W, H) of the returned image in pixels.
        keypoints: (N, 2+) landmarks, N ≥ 468 (478 needed for ``irises``); x, y normalised to
            [0, 1] if ``normed`` else in pixels of an image of size ``image_size``.
        normed: whether ``keypoints`` are normalised.
        config: drawing options (defaults reproduce the official images).

    Returns:
        (H, W, 3) uint8 pose image, colours in array channel order.
    """
    if config.resize not in _RESIZE:
        raise ValueError(f"resize must be one of {sorted(_RESIZE)}, got {config.resize!r}")
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2 or len(points) < 468:
        raise ValueError(f"expected (N>=468, 2+) landmarks, got {points.shape}")
    width, height = int(image_size[0]), int(image_size[1])
    xy = points[:, :2] if normed else points[:, :2] / np.array([width, height])
    size = config.canvas_size
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    pixels = landmark_pixels(xy, size)
    for (start, end), colour in pose_image_edges(config.forehead, config.irises).items():
        if max(start, end) >= len(points):
            raise ValueError(
                f"edge ({start}, {end}) needs {max(start, end) + 1} landmarks, got {len(points)}"
            )
        if start in pixels and end in pixels:
            cv2.line(canvas, pixels[start], pixels[end], colour, thickness=config.thickness)
    return cv2.resize(canvas, (width, height), interpolation=_RESIZE[config.resize])


def draw_landmark_sequence(
    image_size: tuple[int, int],
    keypoints: np.ndarray,
    normed: bool = False,
    config: PoseDrawingConfig = PoseDrawingConfig(),
) -> np.ndarray:
    """Draw (T, N, 2+) landmarks → (T, H, W, 3) uint8 pose images (one :func:`draw_landmarks` each)."""
    return np.stack([draw_landmarks(image_size, k, normed, config) for k in np.asarray(keypoints)])
