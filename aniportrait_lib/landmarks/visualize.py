"""Pictures of landmarks for notebooks: points on an image, the 3D mesh, pose curves, side-by-side videos."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aniportrait_lib.landmarks.drawing import draw_landmarks

POSE_LABELS = ("pitch x (°)", "yaw y (°)", "roll z (°)", "tx", "ty", "tz")


def plot_landmarks(ax, image: np.ndarray, lmks: np.ndarray, title: str = "", size: float = 1.5) -> None:
    """Draw normalised ``lmks`` (N, 2+) as dots over ``image`` (H, W, 3) on a matplotlib axis."""
    h, w = image.shape[:2]
    ax.imshow(image)
    ax.scatter(lmks[:, 0] * w, lmks[:, 1] * h, s=size, c="lime", linewidths=0)
    ax.set_title(title)
    ax.axis("off")


def plot_mesh(ax, mesh: np.ndarray, triangles: np.ndarray | None = None, title: str = "") -> None:
    """Plot a canonical mesh (468, 3) on a 3D matplotlib axis, seen from the front (y up)."""
    x, y, z = mesh[:, 0], mesh[:, 1], mesh[:, 2]
    if triangles is not None:
        ax.plot_trisurf(x, z, y, triangles=triangles, color="#cfd8e3", edgecolor="#50607a", linewidth=0.1)
    else:
        ax.scatter(x, z, y, s=1)
    ax.set(xlabel="x (cm)", ylabel="z (cm)", zlabel="y (cm)", title=title)
    ax.view_init(elev=5, azim=-90)


def plot_pose_curves(axes: Iterable, fps: float, curves: dict[str, np.ndarray]) -> None:
    """One axis per pose component; ``curves`` maps a label to a ``(T, 6)`` pose sequence."""
    for k, ax in enumerate(axes):
        for label, pose in curves.items():
            ax.plot(np.arange(len(pose)) / fps, pose[:, k], label=label, lw=1)
        ax.set_ylabel(POSE_LABELS[k])
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize="small")


def pose_image_video(
    path: str | Path,
    frames: np.ndarray,
    lmks: np.ndarray,
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Write ``[source | pose image]`` side by side as an MP4 (with optional audio).

    Args:
        frames: (T, H, W, 3) uint8 RGB source frames.
        lmks: (T, 478, 3) normalised landmarks (NaN rows: no face, drawn as a black pose image).
    """
    from aniportrait_lib.video_io import VideoWriter

    h, w = frames.shape[1:3]
    with VideoWriter(path, fps, audio=audio) as writer:
        for frame, points in zip(frames, lmks, strict=True):
            pose = (
                np.zeros_like(frame)
                if np.isnan(points).any()
                else draw_landmarks((w, h), points, normed=True)
            )
            writer.write(np.concatenate([frame, pose], axis=1))
    return Path(path)
