import numpy as np
import pytest
import torch

from aniportrait_lib.pipelines.interpolation import (
    FilmInterpolator,
    fill_frames,
    flow_interpolate,
    keyframe_indices,
)


def _scene(shift: float) -> np.ndarray:
    """A smooth textured blob whose centre moves with ``shift`` pixels to the right."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    cx, cy = 40.0 + shift, 48.0
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 12.0**2))
    stripes = 0.5 + 0.5 * np.sin((x - shift) / 3.0)
    grey = 30 + 200 * blob * (0.7 + 0.3 * stripes)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_keyframes_cover_the_last_frame():
    assert keyframe_indices(10, 3) == [0, 3, 6, 9]
    assert keyframe_indices(11, 3) == [0, 3, 6, 9, 10]
    assert keyframe_indices(1, 3) == [0]
    with pytest.raises(ValueError):
        keyframe_indices(0, 3)


def test_flow_interpolation_beats_blending_on_motion():
    a, b, truth = _scene(0), _scene(12), _scene(6)
    middle = flow_interpolate(a, b, 0.5)
    blend = ((a.astype(np.float32) + b) / 2).astype(np.uint8)
    err_flow = np.abs(middle.astype(np.float32) - truth).mean()
    err_blend = np.abs(blend.astype(np.float32) - truth).mean()
    assert err_flow < 0.5 * err_blend
    assert np.array_equal(flow_interpolate(a, a, 0.3), a)  # no motion: the frame itself


def test_fill_frames_yields_every_frame_in_order():
    indices = keyframe_indices(8, 3)  # 0, 3, 6, 7
    keys = [np.full((4, 4, 3), i, np.uint8) for i in indices]
    frames = list(fill_frames(keys, indices, lambda f0, f1, t: np.full_like(f0, 100 + int(10 * t))))
    assert len(frames) == 8
    assert [int(f[0, 0, 0]) for f in frames] == [0, 103, 106, 3, 103, 106, 6, 7]
    with pytest.raises(ValueError):
        list(fill_frames(keys[:-1], indices))


class _MidpointFilm(torch.nn.Module):
    """Stands in for FILM with the same call signature: a weighted blend."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        w = dt.view(-1, 1, 1, 1)
        return self.gain * ((1 - w) * img0 + w * img1)


def test_film_adapter_loads_torchscript_and_calls_it(tmp_path):
    path = tmp_path / "film_net_fp16.pt"
    torch.jit.script(_MidpointFilm()).save(str(path))
    film = FilmInterpolator(path)
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    assert int(film(a, b, 0.25)[0, 0, 0]) == 50
    with pytest.raises(FileNotFoundError, match="optional"):
        FilmInterpolator(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="junk.pt"):
        FilmInterpolator(tmp_path / "junk.pt")
