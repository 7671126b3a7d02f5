"""Tiny random-weight stand-ins for the FID and FVD feature networks, in the real files' format.

Each writer saves a TorchScript module (``torch.jit.script(...).save(path)``), so that the code under test
loads it exactly as it loads the real file (``torch.jit.load``). The modules keep the real call signatures
and feature widths, and check their inputs the way the real networks need them (3 channels; for the I3D
224×224 frames in [-1, 1]), so a test fails if the metric code prepares its inputs wrongly. Weights are
random with a fixed seed: the features mean nothing, but they depend on the pixels.

* :func:`write_fid_standin` - like stylegan2-ada-pytorch's ``inception-2015-12-05.pt``:
  ``forward(img, return_features=False, use_fp16=False, no_output_bias=False)`` on (N, 3, H, W) images
  in [0, 255] (any dtype), resized inside (here to 32×32; the real network: 299×299), ``(x − 128) / 128``;
  ``return_features=True`` gives (N, 2048), otherwise (N, 1008) class probabilities.
* :func:`write_fvd_standin` - like StyleGAN-V's ``i3d_torchscript.pt``:
  ``forward(x, rescale=False, resize=False, return_features=False)`` on (N, 3, T, H, W);
  ``return_features=True`` gives the (N, 400) logits, otherwise their softmax.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["write_fid_standin", "write_fvd_standin"]


class _TinyInception(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2)
        self.proj = nn.Linear(8, features)
        self.head = nn.Linear(features, 1008)

    def forward(
        self, img: Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False
    ) -> Tensor:
        if img.dim() != 4 or img.shape[1] != 3:
            raise RuntimeError("expected images (N, 3, H, W)")
        x = F.interpolate(img.to(torch.float32), size=(32, 32), mode="bilinear", align_corners=False)
        x = torch.relu(self.conv((x - 128.0) / 128.0)).mean(dim=(2, 3))
        features = torch.relu(self.proj(x))  # the real pool features are ≥ 0 too
        if return_features:
            return features
        return torch.softmax(self.head(features), dim=1)


class _TinyI3D(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv3d(3, 6, kernel_size=(2, 16, 16), stride=(2, 16, 16))
        self.logits = nn.Linear(6, features)

    def forward(
        self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> Tensor:
        if rescale:
            x = x.to(torch.float32) / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[3] != 224 or x.shape[4] != 224:
            raise RuntimeError("expected clips (N, 3, T, 224, 224)")
        if bool(x.min() < -1.001) or bool(x.max() > 1.001):
            raise RuntimeError("expected values in [-1, 1]")
        logits = self.logits(torch.tanh(self.conv(x)).mean(dim=(2, 3, 4)))
        if return_features:
            return logits
        return torch.softmax(logits, dim=1)


def _save(module: nn.Module, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is the real files' format
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning
        )
        torch.jit.script(module.eval()).save(str(path))
    return path


def write_fid_standin(path: Path, *, features: int = 2048, seed: int = 0) -> Path:
    """Write a tiny TorchScript Inception stand-in to ``path``; ``features`` ≠ 2048 makes a wrong one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _TinyInception(features)
    return _save(module, path)


def write_fvd_standin(path: Path, *, features: int = 400, seed: int = 0) -> Path:
    """Write a tiny TorchScript I3D stand-in to ``path``; ``features`` ≠ 400 makes a wrong one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _TinyI3D(features)
    return _save(module, path)
