"""Pose guiders: oracle parity (released variant), shapes, ref-pose use, BatchNorm mode, input convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aniportrait_lib.models.pose_guider import (
    MultiScalePoseGuider,
    MultiScalePoseGuiderConfig,
    SingleScalePoseGuider,
    SingleScalePoseGuiderConfig,
    pose_images_to_tensor,
)
from aniportrait_lib.weights.components import load_oracle_guider

TINY = dict(latent_channels=32, num_attention_heads=2, attention_head_dim=8)


@pytest.fixture(scope="module")
def guider_io(oracle_dir):
    return torch.load(oracle_dir / "pose_guider_io.pt", weights_only=True)


@pytest.mark.parametrize(("official_compat", "key"), [(False, "out_eval"), (True, "out_train_mode")])
def test_released_guider_matches_oracle(oracle_dir, guider_io, official_compat, key):
    guider = load_oracle_guider(oracle_dir, official_compat=official_compat).eval()
    with torch.no_grad():
        features = guider(guider_io["x"], guider_io["ref_x"])
    assert len(features) == len(guider_io[key]) == 5
    for ours, theirs in zip(features, guider_io[key], strict=True):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_official_compat_keeps_batchnorm_in_training_mode():
    kit = MultiScalePoseGuider(MultiScalePoseGuiderConfig(**TINY)).eval()
    compat = MultiScalePoseGuider(MultiScalePoseGuiderConfig(**TINY, official_compat=True)).eval()
    norms = [m for m in compat.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.training for m in norms)
    assert not any(m.training for m in kit.modules() if isinstance(m, torch.nn.BatchNorm2d))


def _random_inputs(batch=2, frames=3, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, size, size, generator=gen) * 2 - 1, torch.rand(
        batch, 3, size, size, generator=gen
    ) * 2 - 1


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_multiscale_shapes():
    guider = MultiScalePoseGuider(MultiScalePoseGuiderConfig(**TINY)).eval()
    pose, ref = _random_inputs(size=64)
    shapes = [tuple(f.shape) for f in guider(pose, ref)]
    assert shapes == [
        (2, 32, 3, 8, 8),
        (2, 32, 3, 4, 4),
        (2, 64, 3, 2, 2),
        (2, 128, 3, 1, 1),
        (2, 128, 3, 1, 1),
    ]


def test_released_variant_ignores_ref_pose_and_paper_variant_uses_it():
    pose, ref = _random_inputs()
    released = MultiScalePoseGuider(MultiScalePoseGuiderConfig(**TINY)).eval()
    paper = MultiScalePoseGuider(MultiScalePoseGuiderConfig(**TINY, reference_cross_attention=True)).eval()
    _randomise(released)
    paper.load_state_dict(released.state_dict(), strict=False)
    with torch.no_grad():
        a, b = released(pose, ref), released(pose, -ref)
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        # zero-initialised attn2.to_out: the paper variant starts equal to the released one
        c = paper(pose, ref)
        assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, c, strict=True))
        _randomise(paper, seed=1)
        d, e = paper(pose, ref), paper(pose, -ref)
    assert torch.equal(d[0], e[0])  # f0 comes before any attention
    assert all(not torch.allclose(x, y) for x, y in zip(d[1:], e[1:], strict=True))
    with pytest.raises(ValueError, match="ref_pose"):
        paper(pose, None)
    with torch.no_grad():  # one reference pose shared by the batch = that pose repeated
        shared, repeated = paper(pose, ref[:1]), paper(pose, ref[:1].expand(2, -1, -1, -1))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(shared, repeated, strict=True))
    with pytest.raises(ValueError, match="neither 1 nor"):
        paper(pose, torch.cat([ref, ref]))


def test_paper_variant_loads_the_released_parameters(oracle_dir):
    guider = load_oracle_guider(oracle_dir, reference_cross_attention=True)
    new = {k for k in guider.state_dict() if ".attn2." in k or ".norm2." in k}
    assert new and all(".transformer_blocks.0." in k for k in new)


def test_single_scale_guider_is_zero_at_init_and_single_map():
    guider = SingleScalePoseGuider(SingleScalePoseGuiderConfig(latent_channels=32))
    pose, _ = _random_inputs(size=64)
    features = guider(pose)
    assert len(features) == 1 and features[0].shape == (2, 32, 3, 8, 8)
    assert torch.count_nonzero(features[0]) == 0
    _randomise(guider)
    assert torch.count_nonzero(guider(pose)[0]) > 0
    pointwise = SingleScalePoseGuider(SingleScalePoseGuiderConfig(latent_channels=32, out_kernel_size=1))
    assert pointwise.conv_out.weight.shape == (32, 128, 1, 1)
    assert pointwise(pose)[0].shape == (2, 32, 3, 8, 8)


def test_input_validation():
    guider = SingleScalePoseGuider()
    with pytest.raises(ValueError, match="b, 3, f, H, W"):
        guider(torch.zeros(1, 3, 8, 8))


def test_pose_images_to_tensor_ranges():
    images = np.array([[[[0, 128, 255]]]], dtype=np.uint8)  # (f=1, H=1, W=1, 3)
    kit = pose_images_to_tensor(images)
    compat = pose_images_to_tensor(images, official_compat=True)
    assert kit.shape == (3, 1, 1, 1)
    torch.testing.assert_close(kit.flatten(), torch.tensor([-1.0, 128 / 127.5 - 1, 1.0]))
    torch.testing.assert_close(compat.flatten(), torch.tensor([-1.0, 255.0, 509.0]))
    with pytest.raises(ValueError, match="uint8"):
        pose_images_to_tensor(images.astype(np.float32))
