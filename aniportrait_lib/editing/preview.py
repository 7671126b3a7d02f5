"""Seeing a performance: pose images, the warped-portrait stand-in renderer, videos, pose curves.

The paper renders pose images with the Lmk2Video diffusion model (Pose2Video): seconds per frame on a
CPU. The editor therefore previews with the mini corpus's **warp** renderer: the portrait's pixels follow
the projected landmarks (:func:`aniportrait_lib.data.render.render_frames`), a few milliseconds per
frame, good enough to judge an edit's timing and geometry. The diffusion model renders the same edited
performance on demand, from kit or official weights and with the sampling settings those weights were
made for, beside this warp preview: :mod:`.lmk2video_render` (the editor's "render with Lmk2Video").
:func:`render_video`'s ``"pose2video"`` backend is the bare hook under it: a pipeline you pass in,
sampled on the portrait as it is (no face crop).
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from aniportrait_lib.config import GenerateConfig
from aniportrait_lib.data.face_rig import RigConfig
from aniportrait_lib.data.render import ClipTruth, Reference, render_frames
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.mouth import mouth_opening
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.landmarks.pose import matrices_to_poses
from aniportrait_lib.pipelines.portrait import Portrait
from aniportrait_lib.plots import pose_curves_figure as pose_curves_figure  # re-exported: the editor's curves
from aniportrait_lib.video_io import write_video

RENDER_BACKENDS = ("warp", "pose2video")
"""``warp``: the fast stand-in (moves the portrait's pixels with the landmarks); ``pose2video``: the
diffusion video model (a :class:`~aniportrait_lib.pipelines.pose2video.Pose2VideoPipeline` you pass in)."""


def pose_image(performance: Performance, frame: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """The official pose image of one frame, (H, W, 3) uint8 at ``size`` (W, H), default ``image_size``."""
    size = size or performance.image_size
    points = performance.select([frame]).landmarks_px(size)[0]
    return draw_landmarks(size, points, normed=False)


def _as_truth(performance: Performance, reference: Reference) -> ClipTruth:
    """The corpus renderer's input for a performance drawn on ``reference`` (pose re-expressed
    relative to the reference's own matrix; mouth shading from the mesh's opening)."""
    height, width = reference.image.shape[:2]
    rel = np.linalg.inv(np.asarray(reference.trans_mat, np.float64))[None] @ performance.matrices()
    opening = mouth_opening(performance.mesh) - mouth_opening(np.asarray(reference.lmks3d))
    jaw = np.clip(opening / RigConfig().jaw_drop, 0.0, 1.0).astype(np.float32)
    n = performance.n_frames
    return ClipTruth(
        offsets=(performance.mesh - np.asarray(reference.lmks3d)[None]).astype(np.float32),
        pose=matrices_to_poses(rel).astype(np.float32),
        jaw=jaw,
        spread=np.zeros(n, np.float32),
        blink=np.zeros((n, 2), np.float32),
        lmks2d=performance.landmarks_px((width, height)).astype(np.float32),
    )


def render_performance(performance: Performance, reference: Reference, backend: str = "warp") -> np.ndarray:
    """Frames of ``performance`` on the portrait ``reference`` with the warp stand-in: (T, H, W, 3) uint8.

    The diffusion backend writes a video instead of returning frames: see :func:`render_video`.
    """
    if backend == "warp":
        return render_frames(reference, _as_truth(performance, reference))
    if backend == "pose2video":
        raise ValueError("the pose2video backend renders to a file: call render_video(..., pipeline=...)")
    raise ValueError(f"unknown render backend {backend!r}: choose one of {', '.join(RENDER_BACKENDS)}")


def _portrait(reference: Reference):
    """The generation module's portrait for ``reference``: its pose image drawn from its own mesh."""
    height, width = reference.image.shape[:2]
    still = Performance.still(reference, 1)
    ref_pose = draw_landmarks((width, height), still.landmarks_px((width, height))[0], normed=False)
    return Portrait(reference.image, np.asarray(reference.lmks3d), np.asarray(reference.trans_mat), ref_pose)


def render_video(
    performance: Performance,
    reference: Reference,
    path: str | Path,
    backend: str = "warp",
    audio: tuple[np.ndarray, int] | None = None,
    pipeline=None,
    config=None,
) -> Path:
    """Render ``performance`` and write it as an MP4 (H.264, optional audio (samples, rate)), atomically.

    Args:
        backend: "warp", or "pose2video" with ``pipeline`` (a Lmk2Video pipeline with trained or
            official weights) and optionally ``config``
            (:class:`~aniportrait_lib.config.GenerateConfig`; default: the portrait's
            size, the official sampling settings, the performance's frame rate).
    """
    if backend == "pose2video":
        # heavy (torch, diffusers): loaded only for the diffusion backend, never by the editor's warp previews
        from aniportrait_lib.pipelines.generate import render_performance as diffuse

        if pipeline is None:
            raise ValueError("render_backend='pose2video' needs a pipeline (e.g. built from your weights)")
        height, width = reference.image.shape[:2]
        config = config or GenerateConfig(width=width, height=height, fps=performance.fps)
        return diffuse(pipeline, _portrait(reference), performance, path, config, audio)
    frames = render_performance(performance, reference, backend)
    write_video(path, frames, performance.fps, audio=audio)
    return Path(path)


def figure_png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an ipywidgets ``Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def image_png(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB array as PNG bytes."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()
