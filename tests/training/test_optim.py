import pytest
import torch

from aniportrait_lib.training.optim import clip_grad_norm_float64


def _reference_clip(grads: list[torch.Tensor], max_norm: float) -> tuple[float, list[torch.Tensor]]:
    """The definition: one float64 norm per gradient, their norm, one factor for all (at most 1)."""
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return float(total), [g * coef.to(g.dtype) for g in grads]


@pytest.mark.parametrize("scale", [1e-3, 10.0, 1e21])
def test_clip_matches_the_per_tensor_float64_definition_bitwise(scale):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(7, 5), (3,), (2, 3, 3, 3), (4,)]]
    params[3].data = params[3].data.double()  # a second dtype group
    for p in params:
        p.grad = torch.randn_like(p) * scale
    expected_total, expected = _reference_clip([p.grad for p in params], 1.0)
    total = clip_grad_norm_float64(params, 1.0)
    assert total == expected_total
    assert all(torch.equal(p.grad, e) for p, e in zip(params, expected, strict=True))
    if scale == 1e21:  # float32 squares overflow here; the float64 norm does not
        assert torch.isfinite(torch.tensor(total)) and total > 1e21
        clipped = torch.linalg.vector_norm(torch.cat([p.grad.double().flatten() for p in params]))
        assert float(clipped) == pytest.approx(1.0, rel=1e-6)


def test_clip_ignores_parameters_without_gradients():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    a.grad = torch.full((3,), 4.0)
    assert clip_grad_norm_float64([a, b], 100.0) == pytest.approx(48**0.5)
    assert torch.equal(a.grad, torch.full((3,), 4.0))  # under the limit: untouched
    assert b.grad is None
    assert clip_grad_norm_float64([b], 1.0) == 0.0
