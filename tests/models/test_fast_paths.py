"""The exact fast paths give diffusers' results, are really taken, and come off again cleanly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from aniportrait_lib import host_memory
from aniportrait_lib.models import fast_paths
from aniportrait_lib.models.fast_paths import (
    BlockedFeedForward,
    FastAttnProcessor,
    SplitGEGLU,
    TiledMotionTransformer,
    install_fast_paths,
)
from aniportrait_lib.models.reference_attention import ReferenceReaderProcessor, _ReaderState
from aniportrait_lib.models.unets import FramewiseGroupNorm, build_denoising_unet


def stock(attn, hidden, context=None):
    return AttnProcessor2_0()(attn, hidden, encoder_hidden_states=context)


@pytest.fixture()
def attn():
    torch.manual_seed(0)
    return Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8).eval()


@pytest.fixture()
def self_attn():
    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8, bias=True).eval()


def count_sdpa(monkeypatch) -> list[int]:
    calls = [0]
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fast_paths.F, "scaled_dot_product_attention", spy)
    return calls


def test_self_attention_matches_stock_with_one_projection(self_attn, monkeypatch):
    x = torch.randn(3, 10, 16)
    expected = stock(self_attn, x)
    calls = []
    monkeypatch.setattr(
        fast_paths.F, "linear", lambda *a: calls.append(a[1].shape) or torch._C._nn.linear(*a)
    )
    self_attn.set_processor(FastAttnProcessor())
    torch.testing.assert_close(self_attn(x), expected, atol=1e-6, rtol=1e-5)
    assert calls == [(48, 16), (16, 16)]  # q, k and v in one product; then the output projection


def test_single_token_cross_attention_skips_attention(attn, monkeypatch):
    x, context = torch.randn(4, 10, 16), torch.randn(4, 1, 12)
    expected = stock(attn, x, context)
    calls = count_sdpa(monkeypatch)
    attn.set_processor(FastAttnProcessor())
    out = attn(x, encoder_hidden_states=context)
    assert calls[0] == 0 and out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_longer_cross_attention_and_masks_still_attend(attn):
    attn.set_processor(FastAttnProcessor())
    x, context = torch.randn(2, 10, 16), torch.randn(2, 3, 12)
    torch.testing.assert_close(attn(x, encoder_hidden_states=context), stock(attn, x, context))
    mask = torch.ones(2, 1, 3, dtype=torch.bool)
    mask[:, :, 0] = False
    expected = AttnProcessor2_0()(attn, x, context, attention_mask=mask)
    torch.testing.assert_close(attn(x, encoder_hidden_states=context, attention_mask=mask), expected)


def test_fused_weights_follow_an_optimizer_step(self_attn):
    self_attn.set_processor(FastAttnProcessor())
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        before = self_attn(x)
        self_attn.to_k.weight.add_(0.5)  # in place, as an optimizer does: the cached fusion must notice
        torch.testing.assert_close(self_attn(x), stock(self_attn, x))
    assert not torch.allclose(before, self_attn(x).detach())


def test_gradients_match_stock(self_attn):
    x = torch.randn(2, 6, 16)
    stock(self_attn, x).square().sum().backward()
    expected = [p.grad.clone() for p in self_attn.parameters()]
    self_attn.zero_grad()
    self_attn.set_processor(FastAttnProcessor())
    self_attn(x).square().sum().backward()
    for got, want in zip((p.grad for p in self_attn.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("grad", [False, True])
def test_split_geglu_matches_geglu(grad):
    torch.manual_seed(0)
    geglu = GEGLU(16, 32)
    x = torch.randn(3, 7, 16, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        expected = geglu(x)
        got = SplitGEGLU(geglu)(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    if grad:
        (g1,) = torch.autograd.grad(expected.sum(), geglu.proj.weight)
        (g2,) = torch.autograd.grad(SplitGEGLU(geglu)(x).sum(), geglu.proj.weight)
        torch.testing.assert_close(g2, g1, atol=1e-5, rtol=1e-5)


def test_blocked_feed_forward_matches_in_blocks(monkeypatch):
    torch.manual_seed(0)
    ff = FeedForward(16, activation_fn="geglu").eval()
    x = torch.randn(3, 700, 16)  # 2100 rows: blocks of 256 rows (the floor), the last one partial
    monkeypatch.setattr(fast_paths, "BLOCK_BYTES", 1)
    blocked, seen = BlockedFeedForward(ff), []
    ff.net[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        expected = ff(x)
        seen.clear()
        torch.testing.assert_close(blocked(x), expected, atol=1e-6, rtol=1e-5)
    assert seen == [256] * 8 + [52]
    seen.clear()
    blocked(x).sum().backward()  # under autograd: one pass, as diffusers does it
    assert seen == [3] and ff.net[2].weight.grad is not None  # the (3, 700, 16) batch as it came


def motion_module(framewise: bool) -> AnimateDiffTransformer3D:
    torch.manual_seed(0)
    module = AnimateDiffTransformer3D(
        num_attention_heads=2, attention_head_dim=8, in_channels=16, norm_num_groups=8,
        double_self_attention=True, positional_embeddings="sinusoidal", num_positional_embeddings=8,
    )  # fmt: skip
    if framewise:  # the kit's default (official parity), as use_framewise_motion_norm sets it
        old = module.norm
        module.norm = FramewiseGroupNorm(old.num_groups, old.num_channels, eps=old.eps, affine=old.affine)
        module.norm.weight, module.norm.bias = old.weight, old.bias
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)  # proj_out starts at zero in diffusers: make every part count
    return module.eval()


@pytest.mark.parametrize("framewise", [True, False])
def test_tiled_motion_transformer_is_the_stock_forward_bitwise(framewise, monkeypatch):
    module = motion_module(framewise)
    tiled = TiledMotionTransformer(module)
    assert tiled.state_dict().keys() == module.state_dict().keys()
    monkeypatch.setattr(fast_paths, "TILED_BYTES", 0)  # tile even this small input
    monkeypatch.setattr(fast_paths, "TRANSPOSE_TILE", 5)  # partial last tiles both ways
    x = torch.randn(2 * 6, 16, 7, 9)  # two videos of 6 frames, 7×9 latents
    seen = []
    module.proj_in.register_forward_hook(
        lambda m, args, kwargs, out: seen.append(kwargs["input"].is_contiguous()), with_kwargs=True
    )
    with torch.no_grad():
        expected, got = module(x, num_frames=6), tiled(x, num_frames=6)
    assert torch.equal(got, expected)  # the same operations, only the copies are tiled
    assert seen == [True, True]
    with torch.no_grad():  # a plain GroupNorm's output is not frame by frame: diffusers' own path
        monkeypatch.setattr(TiledMotionTransformer, "_original", lambda self, *a: "fallback")
        assert (tiled(x, num_frames=6) == "fallback") != framewise
    assert tiled(x.requires_grad_(), num_frames=6) == "fallback"  # under autograd: always diffusers'


def test_cache_sized_paths_are_for_the_cpu_only(monkeypatch):
    """On a GPU, blocks and tiles would split one large kernel into hundreds of small ones: there (here
    the meta device stands in for one) the diffusers code runs as it is."""
    monkeypatch.setattr(fast_paths, "BLOCK_BYTES", 1)
    monkeypatch.setattr(fast_paths, "TILED_BYTES", 0)
    ff = FeedForward(16, activation_fn="geglu").eval().to("meta")
    seen = []
    ff.net[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        out = BlockedFeedForward(ff)(torch.empty(3, 700, 16, device="meta"))
    assert seen == [3] and out.shape == (3, 700, 16)  # one pass over the batch as it came
    tiled = TiledMotionTransformer(motion_module(True).to("meta"))
    monkeypatch.setattr(TiledMotionTransformer, "_original", lambda self, *a: "diffusers")
    with torch.no_grad():
        assert tiled(torch.empty(12, 16, 7, 9, device="meta"), num_frames=6) == "diffusers"


def test_install_on_a_motion_unet_and_remove(micro_unet_config):
    torch.manual_seed(0)
    unet = build_denoising_unet(micro_unet_config).eval()
    keys = list(unet.state_dict())
    sample, t = torch.randn(1, 4, 3, 16, 16), torch.tensor(5)
    context = torch.randn(3, 1, micro_unet_config["cross_attention_dim"])
    with torch.no_grad():
        expected = unet(sample, t, encoder_hidden_states=context).sample
        remove = install_fast_paths(unet)
        assert all(isinstance(p, FastAttnProcessor) for p in unet.attn_processors.values())
        assert any(isinstance(m, SplitGEGLU) for m in unet.modules())
        assert any(isinstance(m, BlockedFeedForward) for m in unet.modules())
        assert any(isinstance(m, TiledMotionTransformer) for m in unet.modules())
        assert list(unet.state_dict()) == keys  # same parameters under the same names
        got = unet(sample, t, encoder_hidden_states=context).sample
        remove()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert all(type(p) is AttnProcessor2_0 for p in unet.attn_processors.values())
    assert not any(
        isinstance(m, (SplitGEGLU, BlockedFeedForward, TiledMotionTransformer)) for m in unet.modules()
    )


def test_reader_projects_the_bank_once_at_inference(self_attn):
    reader = ReferenceReaderProcessor(_ReaderState())
    self_attn.set_processor(reader)
    bank, x = torch.randn(1, 7, 16), torch.randn(3, 5, 16)
    reader.bank = [bank]
    seen = []
    handle = self_attn.to_k.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    expected = stock(self_attn, x, torch.cat([x, bank.expand(3, -1, -1)], dim=1))
    seen.clear()
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(self_attn(x), expected, atol=1e-6, rtol=1e-5)
        assert seen.count(7) == 1  # the bank's keys once, the frames' own keys by the fused product
        reader.bank = [bank * 2]  # a new reference: projected again
        self_attn(x)
        assert seen.count(7) == 2
    handle.remove()


def test_reader_bank_keeps_gradients_under_autograd(self_attn):
    reader = ReferenceReaderProcessor(_ReaderState())
    self_attn.set_processor(reader)
    bank = torch.randn(1, 7, 16, requires_grad=True)
    reader.bank = [bank]
    self_attn(torch.randn(2, 5, 16)).sum().backward()
    assert bank.grad is not None and bank.grad.abs().sum() > 0


def test_keep_freed_memory_sets_and_restores_glibc_thresholds(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))

        def malloc_trim(self, pad):
            calls.append(("trim", pad))

    monkeypatch.setattr(host_memory, "_libc", FakeLibc)
    with host_memory.keep_freed_memory(), host_memory.keep_freed_memory():  # nested: set once
        assert calls == [(-3, 32 * 2**20), (-1, 2**30)]
    assert calls[2:] == [(-3, 128 * 2**10), (-1, 128 * 2**10), ("trim", 0)]
