"""ONNX Runtime's attention kernel stands in for PyTorch's at inference on the CPU, with the same results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from aniportrait_lib.models import ort_attention
from aniportrait_lib.models.fast_paths import FastAttnProcessor

pytest.importorskip("onnxruntime")


def _sdpa(query, key, value, heads):
    n, length, channels = query.shape
    split = lambda t: t.view(n, -1, heads, channels // heads).transpose(1, 2)  # noqa: E731
    return (
        F.scaled_dot_product_attention(split(query), split(key), split(value))
        .transpose(1, 2)
        .reshape(n, length, channels)
    )


@pytest.mark.parametrize(
    ("heads", "channels", "queries", "keys"), [(8, 64, 100, 200), (2, 32, 16, 16), (1, 8, 7, 3)]
)
def test_matches_pytorch_attention(heads, channels, queries, keys):
    generator = torch.Generator().manual_seed(heads)
    query = torch.randn(3, queries, channels, generator=generator)
    key, value = (torch.randn(3, keys, channels, generator=generator) for _ in range(2))
    with torch.no_grad():
        assert ort_attention.applies(query, key, value)
        out = ort_attention.attention(query, key, value, heads)
        torch.testing.assert_close(out, _sdpa(query, key, value, heads), atol=2e-6, rtol=1e-5)
        assert torch.equal(ort_attention.attention(query, key, value, heads), out)  # the same every time
        # strided inputs (e.g. chunks of one fused projection) give the same result
        fused = torch.cat([query, query], dim=-1)
        assert torch.equal(ort_attention.attention(fused[..., :channels], key, value, heads), out)


def test_applies_only_at_float32_cpu_inference(monkeypatch):
    tensors = [torch.randn(1, 4, 8) for _ in range(3)]
    assert not ort_attention.applies(*tensors)  # autograd on (this test does not disable it)
    with torch.no_grad():
        assert ort_attention.applies(*tensors)
        assert not ort_attention.applies(*(t.double() for t in tensors))
        assert not ort_attention.applies(*(t.to("meta") for t in tensors))
        monkeypatch.setattr(ort_attention, "ENABLED", False)
        assert not ort_attention.applies(*tensors)


def test_the_fast_processor_uses_it_at_inference_only(monkeypatch):
    torch.manual_seed(0)
    attn = Attention(32, heads=4, dim_head=8).eval()
    attn.set_processor(FastAttnProcessor())
    hidden = torch.randn(2, 10, 32)
    calls = []
    real = ort_attention.attention
    monkeypatch.setattr(ort_attention, "attention", lambda *a: calls.append(a[3]) or real(*a))
    with torch.no_grad():
        fast = attn(hidden)
        monkeypatch.setattr(ort_attention, "ENABLED", False)
        torch.testing.assert_close(fast, attn(hidden), atol=2e-6, rtol=1e-5)
    assert calls == [4]
    monkeypatch.setattr(ort_attention, "ENABLED", True)
    attn(hidden).sum().backward()  # under autograd: PyTorch's attention, with gradients
    assert calls == [4] and attn.to_q.weight.grad is not None
