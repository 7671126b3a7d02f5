"""Pose features enter after conv_in (also the first skip) and after each down block (not its skips)."""

from __future__ import annotations

import pytest
import torch

from aniportrait_lib.models.pose_injection import PoseInjector
from aniportrait_lib.models.unets import build_denoising_unet


@pytest.fixture(scope="module")
def unet(micro_unet_config):
    torch.manual_seed(0)
    return build_denoising_unet(micro_unet_config).eval()


def _run_and_capture(unet, injector, features):
    """Run once; capture conv_in output and down_blocks[0]'s (hidden, skips) as seen after injection."""
    seen = {}
    handles = [
        unet.conv_in.register_forward_hook(lambda m, i, o: seen.__setitem__("conv_in", o)),
        unet.down_blocks[0].register_forward_hook(lambda m, i, o: seen.__setitem__("down0", o)),
    ]
    try:
        with torch.no_grad(), injector.features(features):
            unet(
                torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(1)),
                5,
                torch.zeros(2, 1, 16),
            )
    finally:
        for h in handles:
            h.remove()
    return seen


def test_hooks_add_to_hidden_states_only(unet):
    injector = PoseInjector(unet)
    try:
        base = _run_and_capture(unet, injector, None)
        f0 = torch.randn(1, 32, 2, 8, 8)
        f1 = torch.randn(1, 32, 2, 4, 4)
        injected = _run_and_capture(unet, injector, [torch.zeros_like(f0), f1])
        torch.testing.assert_close(injected["down0"][0], base["down0"][0] + f1[0].transpose(0, 1))
        for a, b in zip(injected["down0"][1], base["down0"][1], strict=True):  # skips untouched
            torch.testing.assert_close(a, b)
        with_f0 = _run_and_capture(unet, injector, [f0])
        torch.testing.assert_close(with_f0["conv_in"], base["conv_in"] + f0[0].transpose(0, 1))
    finally:
        injector.remove()


def test_errors_and_removal(unet):
    injector = PoseInjector(unet)
    try:
        with pytest.raises(ValueError, match="at most 3"), injector.features([torch.zeros(1)] * 4):
            pass
        with pytest.raises(ValueError, match="conv_in"), injector.features([torch.zeros(1, 32, 2, 4, 4)]):
            unet(torch.randn(1, 4, 2, 8, 8), 5, torch.zeros(2, 1, 16))
    finally:
        injector.remove()
    assert not unet.conv_in._forward_hooks and not unet.down_blocks[0]._forward_hooks
