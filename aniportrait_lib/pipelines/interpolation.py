"""Frame-interpolation acceleration: generate every k-th frame, fill the rest by interpolation.

The official ``-acc`` option generates only every third pose frame with the diffusion model and
lets FILM (a learned interpolator, ``film_net_fp16.pt``) insert the frames between (spec §3.5).
Diffusion steps are the expensive part, so this is ~k× faster for a small loss in motion detail.

The kit does the same with a method that needs no weights: dense optical flow (OpenCV's DIS) in
both directions, each neighbour warped to the in-between time and blended. Users who have the FILM
TorchScript file can use it instead (:class:`FilmInterpolator`). Unlike the official schedule,
which drops the frames after the last multiple of k, the last frame is always generated, so the
output has exactly as many frames as the pose sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

Interpolator = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
"""``(frame0, frame1, t) -> frame_t``: uint8 ``(H, W, 3)`` RGB frames, ``t`` in (0, 1)."""


def keyframe_indices(num_frames: int, step: int) -> list[int]:
    """Frames to generate: 0, step, 2·step, … and always the last one."""
    if num_frames < 1 or step < 1:
        raise ValueError(f"need num_frames ≥ 1 and step ≥ 1, got {num_frames} and {step}")
    indices = list(range(0, num_frames, step))
    if indices[-1] != num_frames - 1:
        indices.append(num_frames - 1)
    return indices


def _flow(src_grey: np.ndarray, dst_grey: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(src_grey, dst_grey, None)


def _warp(image: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    """Sample ``image`` at ``x + scale·flow(x)`` (backward warping)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + scale * flow[..., 0]
    map_y = grid_y + scale * flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flow_interpolate(frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
    """The frame at time ``t`` ∈ (0, 1) between two RGB uint8 frames, by bidirectional optical flow.

    Linear motion is assumed: the content at ``x`` at time ``t`` came from ``x − t·F₀₁(x)`` in
    frame 0 and from ``x − (1−t)·F₁₀(x)`` in frame 1 (flows sampled at the target position, the
    usual first-order approximation); the two warps are blended with weights ``1−t`` and ``t``.
    """
    grey0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
    grey1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
    from0 = _warp(frame0, _flow(grey0, grey1), -t)
    from1 = _warp(frame1, _flow(grey1, grey0), -(1.0 - t))
    blended = (1.0 - t) * from0.astype(np.float32) + t * from1.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def fill_frames(
    keyframes: Sequence[np.ndarray], indices: Sequence[int], interpolate: Interpolator = flow_interpolate
):
    """Yield every frame from ``keyframes`` generated at ``indices`` (see :func:`keyframe_indices`).

    Frames are produced in order and one at a time, so a video writer can consume them directly.
    """
    if len(keyframes) != len(indices) or not len(indices):
        raise ValueError(f"{len(keyframes)} keyframes for {len(indices)} indices")
    for k in range(len(indices) - 1):
        start, stop = indices[k], indices[k + 1]
        yield keyframes[k]
        for frame_index in range(start + 1, stop):
            yield interpolate(keyframes[k], keyframes[k + 1], (frame_index - start) / (stop - start))
    yield keyframes[-1]


class FilmInterpolator:
    """FILM (``film_net_fp16.pt``, a TorchScript export) as an :data:`Interpolator`.

    The file is the one the official ``-acc`` option uses; it is called as
    ``model(img0, img1, dt)`` with ``(1, 3, H, W)`` images in [0, 1] and ``dt`` of shape ``(1, 1)``.
    TorchScript archives hold compiled graphs and tensors, not pickled Python objects.
    """

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        """Load the TorchScript file onto ``device``.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: naming the file: truncated, corrupt, or not a TorchScript model (e.g. a state dict).
        """
        # the optional FILM method only: the rest of this module (optical flow) is torch-free
        import torch

        from aniportrait_lib.weights.checkpoint_io import load_torchscript

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"FILM weights not found at {path} (optional: the optical-flow method needs none)"
            )
        self.model = load_torchscript(path, map_location=device).eval()
        self.device = device
        self.dtype = next(self.model.parameters(), torch.zeros(())).dtype

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
        import torch  # as in __init__

        def to_tensor(frame: np.ndarray) -> torch.Tensor:
            tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
            return tensor.to(self.device, self.dtype)

        dt = torch.full((1, 1), float(t), device=self.device, dtype=self.dtype)
        with torch.no_grad():
            out = self.model(to_tensor(frame0), to_tensor(frame1), dt)
        image = out[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return (image * 255.0 + 0.5).astype(np.uint8)
