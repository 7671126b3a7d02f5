"""The kit's pictures, drawn one way everywhere: loss curves, pose curves, landmarks, image grids and
side-by-side videos.

Notebooks (through :mod:`aniportrait_lib.studies`) and the editor draw with these functions; a figure's
own words (title, axis labels, which runs it compares) stay with the study or widget that shows it.
This module sits in the kit's lowest layer (it imports only :mod:`aniportrait_lib.video_io`), so every
layer may use it.

=================================  ==============================================================
function                           draws
=================================  ==============================================================
:func:`plot_loss_curve`            one run's loss per step, faint, and its moving average (log scale)
:func:`plot_pose_curves`           the six pose components over time, one axis each
:func:`pose_curves_figure`         the same on a new figure (the editor's and notebook 06's view)
:func:`plot_landmarks`             landmarks as dots over their image
:func:`plot_mesh`                  a canonical mesh in 3D, seen from the front
:func:`image_grid`                 images in a grid with small titles
:func:`side_by_side_video`         labelled panels side by side, written as an MP4 (with speech)
=================================  ==============================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from aniportrait_lib.video_io import write_video

POSE_LABELS = ("pitch x (°)", "yaw y (°)", "roll z (°)", "tx", "ty", "tz")
"""Axis labels of the 6 pose components (glossary ``pose``: euler xyz degrees + translation)."""

LABEL_HEIGHT = 22
"""Pixels of the black strip above each side-by-side panel that holds its name."""


# 1. Loss curves


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of every ``window`` consecutive values: (S,) → (S - window + 1,)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return np.convolve(np.asarray(values, float), np.ones(window) / window, mode="valid")


def plot_loss_curve(
    ax,
    losses: Sequence[float],
    steps: Sequence[int] | None = None,
    window: int = 10,
    label: str | None = None,
    raw: bool = True,
    **style,
) -> None:
    """Draw one run's training loss on ``ax`` (log scale): every step, faint, and the moving average
    over ``window`` steps on top, placed at the last step it covers.

    Args:
        losses: (S,) loss per logged step.
        steps: (S,) their optimizer steps (default ``1 … S``).
        window: steps per moving average; a run shorter than that shows its raw losses only.
        label: the average's legend entry (default ``"mean of <window>"``).
        raw: draw the per-step losses too; ``False`` (only the average, under ``label``) compares runs on
            one axis.
        style: matplotlib line options for the average (e.g. ``ls="--"``).
    """
    losses = np.asarray(losses, float)
    steps = np.arange(1, len(losses) + 1) if steps is None else np.asarray(steps)
    if len(steps) != len(losses):
        raise ValueError(f"{len(steps)} steps for {len(losses)} losses")
    if raw:
        ax.plot(steps, losses, lw=0.6, alpha=0.4, label="per step")
    if len(losses) >= window:
        ax.plot(steps[window - 1 :], moving_average(losses, window), **{"lw": 1.5, **style},
                label=label or f"mean of {window}")  # fmt: skip
    elif not raw:
        ax.plot(steps, losses, label=label, **style)
    ax.set_yscale("log")


# 2. Pose curves


def plot_pose_curves(
    axes: Iterable,
    fps: float,
    curves: Mapping[str, np.ndarray],
    components: Sequence[int] | None = None,
    frame: int | None = None,
    key_frames: Sequence[int] | None = None,
) -> None:
    """One axis per pose component, every curve on each; time in seconds on the last axis.

    Args:
        curves: label → (T, 6) poses.
        components: the pose entry each axis shows (0–2 euler x/y/z degrees, 3–5 translation); default
            ``0, 1, …`` one per axis.
        frame: draw a cursor at this frame; key_frames: mark these frames.
    """
    axes = list(axes)
    components = range(len(axes)) if components is None else components
    for ax, k in zip(axes, components, strict=True):
        for label, pose in curves.items():
            ax.plot(np.arange(len(pose)) / fps, np.asarray(pose)[:, k], label=label, lw=1.2)
        for key in key_frames or []:
            ax.axvline(key / fps, color="tab:orange", lw=0.8, ls=":")
        if frame is not None:
            ax.axvline(frame / fps, color="k", lw=0.8)
        ax.set_ylabel(POSE_LABELS[k])
    axes[-1].set_xlabel("time (s)")
    axes[0].legend(loc="upper right", fontsize="small")


def pose_curves_figure(
    curves: Mapping[str, np.ndarray],
    fps: float,
    components: Sequence[int] = (0, 1, 2),
    frame: int | None = None,
    key_frames: Sequence[int] | None = None,
    figsize: tuple[float, float] = (7.0, 4.0),
):
    """:func:`plot_pose_curves` on a new figure, one row per component → ``matplotlib.figure.Figure``.

    The figure is not registered with pyplot (nothing piles up in a widget that redraws it); show it
    with ``display(fig)``.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(len(components), 1, sharex=True, squeeze=False)[:, 0]
    plot_pose_curves(axes, fps, curves, components, frame, key_frames)
    return fig


# 3. Landmarks, meshes and images


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


def image_grid(images: list[np.ndarray], titles: list[str], columns: int | None = None, width: float = 3.4):
    """A ``matplotlib.figure.Figure`` showing (H, W, 3) images in a grid with small titles."""
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(width * columns, width * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, title in zip(axes, images, titles, strict=False):
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
    return fig


# 4. Side-by-side videos


def label_panel(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel`` (H, W, 3) uint8 under a black strip of :data:`LABEL_HEIGHT` px holding ``text`` in white."""
    header = np.zeros((LABEL_HEIGHT, panel.shape[1], 3), np.uint8)
    cv2.putText(header, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([header, panel])


def side_by_side_frames(
    panels: Mapping[str, Iterable[np.ndarray]], min_side: int = 0
) -> Iterator[np.ndarray]:
    """Frames with one labelled panel per entry of ``panels`` (name → (H, W, 3) uint8 frames), left to right.

    Panels smaller than ``min_side`` are enlarged by the smallest integer factor reaching it (nearest
    neighbour, so every generated pixel stays visible). Frames are made one at a time: ``panels`` may be
    generators. All panels must have the same number of frames and, once enlarged, the same height.
    """
    for step in zip(*panels.values(), strict=True):
        row = []
        for name, panel in zip(panels, step, strict=True):
            panel = np.asarray(panel)
            factor = max(1, math.ceil(min_side / min(panel.shape[:2])))
            if factor > 1:
                panel = cv2.resize(panel, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
            row.append(label_panel(panel, name))
        if len({p.shape[0] for p in row}) > 1:
            raise ValueError(f"panels {list(panels)} differ in height: {[p.shape[0] for p in row]} px")
        yield np.concatenate(row, axis=1)


def side_by_side_video(
    path: str | Path,
    panels: Mapping[str, Iterable[np.ndarray]],
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
    min_side: int = 0,
) -> Path:
    """Write :func:`side_by_side_frames` as an H.264 MP4, atomically, with ``audio`` = (float samples in
    [-1, 1], rate) muxed as AAC if given; returns the path."""
    return write_video(path, side_by_side_frames(panels, min_side), fps, audio=audio)
