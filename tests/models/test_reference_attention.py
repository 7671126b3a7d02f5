"""Each behaviour of the reference-attention processors, on a single ``Attention`` and on tiny UNets."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from aniportrait_lib.models.reference_attention import (
    ReferenceAttention,
    ReferenceReaderProcessor,
    ReferenceWriterProcessor,
    _ReaderState,
    pair_reference_blocks,
    reference_block_names,
)
from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet


@pytest.fixture()
def attn():
    torch.manual_seed(0)
    return Attention(query_dim=8, heads=2, dim_head=4).eval()


def plain(attn, hidden, context=None):
    return AttnProcessor2_0()(attn, hidden, encoder_hidden_states=context)


def test_writer_records_its_input_and_attends_normally(attn):
    writer = ReferenceWriterProcessor()
    attn.set_processor(writer)
    x = torch.randn(1, 5, 8)
    out = attn(x)
    assert len(writer.bank) == 1 and torch.equal(writer.bank[0], x)
    torch.testing.assert_close(out, plain(attn, x))


def test_reader_concatenates_bank_repeated_per_frame(attn):
    reader = ReferenceReaderProcessor(_ReaderState())
    bank = torch.randn(1, 7, 8)
    reader.bank = [bank]
    attn.set_processor(reader)
    x = torch.randn(3, 5, 8)  # 3 frames of one video
    expected = plain(attn, x, torch.cat([x, bank.expand(3, -1, -1)], dim=1))
    torch.testing.assert_close(attn(x), expected)


def test_reader_with_empty_bank_is_plain_self_attention(attn):
    attn.set_processor(ReferenceReaderProcessor(_ReaderState(classifier_free_guidance=True)))
    x = torch.randn(4, 5, 8)
    torch.testing.assert_close(attn(x), plain(attn, x))


def test_unconditional_half_runs_without_bank(attn):
    reader = ReferenceReaderProcessor(_ReaderState(classifier_free_guidance=True))
    bank = torch.randn(1, 7, 8)
    reader.bank = [bank]
    attn.set_processor(reader)
    x = torch.randn(6, 5, 8)  # [uncond 3 frames, cond 3 frames]
    out = attn(x)
    torch.testing.assert_close(out[:3], plain(attn, x[:3]))
    torch.testing.assert_close(out[3:], plain(attn, x[3:], torch.cat([x[3:], bank.expand(3, -1, -1)], dim=1)))
    with pytest.raises(ValueError, match="even"):
        attn(torch.randn(5, 5, 8))


def test_reader_rejects_indivisible_bank(attn):
    reader = ReferenceReaderProcessor(_ReaderState())
    reader.bank = [torch.randn(2, 7, 8)]
    attn.set_processor(reader)
    with pytest.raises(ValueError, match="does not divide"):
        attn(torch.randn(3, 5, 8))


@pytest.fixture(scope="module")
def micro_unets(micro_unet_config):
    torch.manual_seed(0)
    config = micro_unet_config
    return build_reference_unet(config).eval(), build_denoising_unet(config).eval()


def test_only_spatial_blocks_get_processors(micro_unets):
    reference, denoiser = micro_unets
    names = reference_block_names(denoiser)
    assert names and not any("motion_modules" in n for n in names)
    control = ReferenceAttention(reference, denoiser)
    try:
        for key, proc in denoiser.attn_processors.items():
            is_reader = key.removesuffix(".attn1.processor") in names
            assert isinstance(proc, ReferenceReaderProcessor) == is_reader, key
    finally:
        control.remove()
    assert all(type(p) is AttnProcessor2_0 for p in denoiser.attn_processors.values())


@pytest.mark.parametrize("official_compat", [False, True])
def test_bank_fp16_cast_only_under_official_compat(micro_unets, official_compat):
    reference, denoiser = micro_unets
    control = ReferenceAttention(reference, denoiser, official_compat=official_compat)
    try:
        with torch.no_grad():
            reference(torch.randn(1, 4, 8, 8), 0, torch.randn(1, 1, 16))
        control.update()
        for writer_name, reader_name in control.pairs:
            written, read = control.writers[writer_name].bank[0], control.readers[reader_name].bank[0]
            assert read.dtype == (torch.float16 if official_compat else torch.float32)
            assert torch.equal(read, written.to(read.dtype))
        control.clear()
        assert all(not p.bank for p in [*control.writers.values(), *control.readers.values()])
    finally:
        control.remove()


def test_reference_changes_only_the_conditional_half(micro_unets):
    reference, denoiser = micro_unets
    control = ReferenceAttention(reference, denoiser)
    sample = torch.randn(1, 4, 3, 8, 8).repeat(2, 1, 1, 1, 1)  # same latents for [uncond, cond]
    context = torch.randn(2, 1, 16).repeat_interleave(3, dim=0)
    try:
        with torch.no_grad():
            plain_out = denoiser(sample, 10, context).sample
            reference(torch.randn(1, 4, 8, 8), 0, context[3:4])
            control.update()
            control.classifier_free_guidance = True
            guided = denoiser(sample, 10, context).sample
    finally:
        control.remove()
    torch.testing.assert_close(guided[0], plain_out[0], atol=1e-5, rtol=0)
    assert not torch.allclose(guided[1], plain_out[1], atol=1e-3)


def test_full_size_pairing_is_sixteen_same_name_blocks_by_width():
    with torch.device("meta"):
        reference, denoiser = build_reference_unet(), build_denoising_unet()
    pairs = pair_reference_blocks(reference, denoiser)
    assert len(pairs) == 16 and all(w == r for w, r in pairs)
    widths = [reference.get_submodule(w).norm1.normalized_shape[0] for w, _ in pairs]
    assert widths == sorted(widths, reverse=True) and widths[0] == 1280 and widths[-1] == 320


def test_writer_bank_keeps_gradients_for_training(micro_unets):
    reference, denoiser = micro_unets
    control = ReferenceAttention(reference, denoiser)
    try:
        latents = torch.randn(1, 4, 8, 8, requires_grad=True)
        reference(latents, 0, torch.randn(1, 1, 16))
        control.update()
        sum(t.sum() for proc in control.readers.values() for t in proc.bank).backward()
    finally:
        control.remove()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
