"""Warping a portrait so that its landmarks move to new positions (the mini corpus renderer).

Given where a set of control points sit in the source image and where they should go, the
output pixel at ``q`` samples the source at the piecewise-linear interpolation (over a Delaunay
triangulation of the *target* points) of the source positions. Computing that backward map on a
coarse grid and upsampling it keeps a 256² frame at a few milliseconds; ``cv2.remap`` does the
sampling.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay


def border_points(height: int, width: int, per_side: int = 5, margin: float = 8.0) -> np.ndarray:
    """Fixed points on a frame ``margin`` pixels outside the image, ``(4·per_side, 2)`` as (x, y).

    Lying outside the image, they keep every pixel (and every point of the coarse map grid) inside
    the triangulation: points outside it would make the interpolator fall back to a slow search.
    """
    x0, y0, x1, y1 = -margin, -margin, width - 1 + margin, height - 1 + margin
    xs = np.linspace(x0, x1, per_side + 1)[:-1]
    ys = np.linspace(y0, y1, per_side + 1)[:-1]
    top = np.stack([xs, np.full_like(xs, y0)], 1)
    right = np.stack([np.full_like(ys, x1), ys], 1)
    bottom = np.stack([x1 + x0 - xs, np.full_like(xs, y1)], 1)
    left = np.stack([np.full_like(ys, x0), y1 + y0 - ys], 1)
    return np.concatenate([top, right, bottom, left])


def backward_map(
    source_pts: np.ndarray, target_pts: np.ndarray, height: int, width: int, grid_step: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel source coordinates for ``cv2.remap``: two ``(H, W)`` float32 maps (x, y).

    Args:
        source_pts, target_pts: ``(N, 2)`` (x, y) pixel positions of the same control points.
            Include :func:`border_points` in both so the whole frame is covered.
        grid_step: the map is computed every ``grid_step`` pixels and upsampled bilinearly.
    """
    gh, gw = -(-height // grid_step) + 1, -(-width // grid_step) + 1
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float64) * grid_step
    query = np.stack([gx.ravel(), gy.ravel()], 1)
    coarse = _piecewise_linear(target_pts, source_pts, query).reshape(gh, gw, 2)
    # upsample with grid points kept exactly where they are (cv2.resize would shift by half a cell)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / grid_step
    fine = cv2.remap(coarse.astype(np.float32), xs, ys, interpolation=cv2.INTER_LINEAR)
    return fine[..., 0], fine[..., 1]


def _piecewise_linear(nodes: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` (N, 2) given at ``nodes`` (N, 2) over their Delaunay
    triangulation, at ``query`` (Q, 2); points outside the hull keep their own position (no motion).

    Barycentric weights are computed directly (vectorised), which is much faster for one-off
    triangulations than scipy's interpolator, whose per-triangulation set-up dominates here.
    """
    tri = Delaunay(nodes)
    simplex = tri.find_simplex(query)
    inside = simplex >= 0
    corners = nodes[tri.simplices[simplex[inside]]]  # (Q_in, 3, 2)
    v0, v1 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    d = query[inside] - corners[:, 0]
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    b1 = (d[:, 0] * v1[:, 1] - d[:, 1] * v1[:, 0]) / det
    b2 = (v0[:, 0] * d[:, 1] - v0[:, 1] * d[:, 0]) / det
    weights = np.stack([1.0 - b1 - b2, b1, b2], axis=1)
    out = query.astype(np.float64).copy()
    out[inside] = np.einsum("qk,qkc->qc", weights, values[tri.simplices[simplex[inside]]])
    return out


def warp_image(
    image: np.ndarray, source_pts: np.ndarray, target_pts: np.ndarray, grid_step: int = 4
) -> np.ndarray:
    """Move ``image``'s content from ``source_pts`` to ``target_pts`` (both ``(N, 2)`` x, y pixels).

    Border points are added automatically, so the frame edges stay in place.
    """
    h, w = image.shape[:2]
    border = border_points(h, w)
    src = np.concatenate([source_pts, border])
    dst = np.concatenate([target_pts, border])
    map_x, map_y = backward_map(src, dst, h, w, grid_step)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def darken_polygon(
    image: np.ndarray, polygon: np.ndarray, strength: float, colour=(40, 12, 14)
) -> np.ndarray:
    """Blend ``colour`` into the inside of ``polygon`` (``(K, 2)`` x, y) with soft edges.

    Used for the mouth cavity: the more the lips part, the darker the inside of the mouth.
    """
    if strength <= 0:
        return image
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(h / 256.0, 0.6)) * float(np.clip(strength, 0, 1))
    out = image.astype(np.float32) * (1 - mask[..., None]) + np.asarray(colour, np.float32) * mask[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
