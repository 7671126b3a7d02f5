"""Adding pose-guider features to a diffusers UNet with forward hooks (spec §3.2, FEASIBILITY.md).

The official 3-D UNet adds the five pose maps inside its ``forward``::

    h = conv_in(x) + f0                  # this sum is also the first skip connection
    for k, block in enumerate(down_blocks):
        h, skips = block(h, ...)
        h = h + f[k + 1]                 # added AFTER the skips were collected

Two kinds of forward hooks reproduce this on stock ``UNetMotionModel`` / ``UNet2DConditionModel`` without
touching their ``forward``: one on ``conv_in`` (its output is the first skip, as in the official code) and
one on each ``down_blocks[k]`` that changes only the returned hidden states, not the skip tuple.
A guider that returns fewer maps (AnimateAnyone's single map) simply leaves the later hooks idle.

Usage::

    injector = PoseInjector(unet)
    with injector.features(pose_features):      # list of (b, C_k, f, h_k, w_k)
        out = unet(sample, t, encoder_hidden_states).sample
    injector.remove()
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from einops import rearrange
from torch import nn

__all__ = ["PoseInjector"]


def _fold_frames(feature: torch.Tensor) -> torch.Tensor:
    """``(b, C, f, h, w)`` → ``(b·f, C, h, w)`` (batch-major, like diffusers' fold of the sample)."""
    return rearrange(feature, "b c f h w -> (b f) c h w") if feature.ndim == 5 else feature


class PoseInjector:
    """Installs the pose hooks on ``unet`` once; features are supplied per call via :meth:`features`.

    Args:
        unet: a diffusers UNet with ``conv_in`` and ``down_blocks`` (motion or 2-D).
    """

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self._features: list[torch.Tensor] = []
        self._handles = [unet.conv_in.register_forward_hook(self._after_conv_in)]
        for index, block in enumerate(unet.down_blocks):
            self._handles.append(block.register_forward_hook(self._after_down_block(index + 1)))

    @property
    def max_features(self) -> int:
        """How many maps this UNet can take: one for conv_in plus one per down block."""
        return 1 + len(self.unet.down_blocks)

    @contextmanager
    def features(self, pose_features: Sequence[torch.Tensor] | None) -> Iterator[None]:
        """Use ``pose_features`` (``(b, C_k, f, h_k, w_k)`` or ``(b·f, C_k, h_k, w_k)`` each) in the block.

        ``None`` or an empty list runs the UNet without pose conditioning.
        """
        pose_features = list(pose_features or [])
        if len(pose_features) > self.max_features:
            raise ValueError(
                f"got {len(pose_features)} pose maps; this UNet takes at most {self.max_features}"
            )
        self._features = [_fold_frames(f) for f in pose_features]
        try:
            yield
        finally:
            self._features = []

    def remove(self) -> None:
        """Uninstall all hooks (the UNet is then the stock model again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _add(self, index: int, hidden: torch.Tensor, where: str) -> torch.Tensor:
        feature = self._features[index]
        if feature.shape != hidden.shape:
            raise ValueError(
                f"pose map {index} has shape {tuple(feature.shape)}, {where} gives {tuple(hidden.shape)}"
            )
        return hidden + feature.to(hidden.dtype)

    def _after_conv_in(self, module, inputs, output):
        return self._add(0, output, "conv_in") if self._features else output

    def _after_down_block(self, index: int):
        def hook(module, inputs, output):
            if index >= len(self._features):
                return output
            hidden, skips = output
            return self._add(index, hidden, f"down_blocks[{index - 1}]"), skips

        return hook
