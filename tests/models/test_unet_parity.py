"""Denoising/reference UNets against the official oracle (``unet_io.pt``), weights via the kit's converter."""

from __future__ import annotations

import json

import pytest
import torch

from aniportrait_lib.models.pose_injection import PoseInjector
from aniportrait_lib.models.reference_attention import ReferenceAttention, pair_reference_blocks
from aniportrait_lib.weights.components import load_oracle_guider

ATOL = 1e-4


@pytest.fixture(scope="module")
def official_run(oracle_dir, oracle_components, unet_io):
    """Run the kit exactly as the oracle ran the official code; returns all outputs."""
    reference, denoiser = oracle_components.reference_unet, oracle_components.denoising_unet
    guider = load_oracle_guider(oracle_dir).eval()
    attention = ReferenceAttention(reference, denoiser, official_compat=True)
    injector = PoseInjector(denoiser)
    io = unet_io
    frames = io["noisy_latents"].shape[2]
    context = io["encoder_hidden_states"].repeat_interleave(frames, dim=0)  # (b·f, 1, C)

    def denoise(features):
        with injector.features(features):
            return denoiser(io["noisy_latents"], io["timestep"], context).sample

    try:
        with torch.no_grad():
            pose_features = guider(io["pose_x"], io["pose_ref"])
            reference(io["ref_latents"], 0, io["encoder_hidden_states"])
            attention.update()
            out = {"pose_fea_eval": pose_features, "writer_banks": attention.writer_banks()}
            out["out_with_reference"] = denoise(pose_features)
            attention.clear()
            out["out_without_reference_empty_bank"] = denoise(pose_features)
            out["out_no_reference_no_pose"] = denoise(None)
    finally:
        attention.remove()
        injector.remove()
    return out


def test_pairing_matches_official(oracle_dir, oracle_components, unet_io):
    pairs = pair_reference_blocks(oracle_components.reference_unet, oracle_components.denoising_unet)
    expected = [tuple(p) for p in json.loads((oracle_dir / "reference_pairing.json").read_text())]
    assert pairs == expected == [tuple(p) for p in unet_io["pairing_writer_to_reader"]]


def test_pose_features(official_run, unet_io):
    for ours, theirs in zip(official_run["pose_fea_eval"], unet_io["pose_fea_eval"], strict=True):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_writer_banks_are_norm1_outputs(official_run, unet_io):
    banks = official_run["writer_banks"]
    assert set(banks) == set(unet_io["writer_banks"])
    for name, expected in unet_io["writer_banks"].items():
        assert len(banks[name]) == 1
        torch.testing.assert_close(banks[name][0], expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "case", ["out_with_reference", "out_without_reference_empty_bank", "out_no_reference_no_pose"]
)
def test_denoiser_output(official_run, unet_io, case):
    assert official_run[case].shape == unet_io[case].shape
    torch.testing.assert_close(official_run[case], unet_io[case], atol=ATOL, rtol=0)
