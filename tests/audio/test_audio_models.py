"""Audio2Mesh / Audio2Pose: official parity on the oracle, masks, teacher forcing vs generation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import Wav2Vec2Config

from aniportrait_lib.audio import Audio2MeshConfig, Audio2PoseConfig
from aniportrait_lib.audio.audio2pose import (
    SinusoidalPositionalEncoding,
    alibi_causal_bias,
    alibi_slopes,
    audio_alignment_mask,
)
from aniportrait_lib.weights.audio_checkpoints import load_audio2mesh, load_audio2pose

ATOL = 1e-4  # oracle README: suggested tolerance for a reimplementation


@pytest.fixture(scope="module")
def oracle(oracle_dir):
    io = torch.load(oracle_dir / "audio_io.pt", weights_only=True)
    w2v = Wav2Vec2Config(**json.loads((oracle_dir / "w2v_tiny_config.json").read_text()))
    configs = json.loads((oracle_dir / "audio_configs.json").read_text())
    return io, w2v, configs


def test_the_shared_tiny_config_is_the_oracles(oracle, make_wav2vec2_config):
    _, w2v, _ = oracle
    assert make_wav2vec2_config().to_dict() == w2v.to_dict()  # tests/conftest.py's default sizes


def test_audio2mesh_matches_official(oracle, oracle_dir):
    io, w2v, configs = oracle
    config = Audio2MeshConfig(latent_dim=configs["a2m"]["latent_dim"], out_dim=1404, encoder=w2v)
    model = load_audio2mesh(oracle_dir / "audio2mesh_sd.pt", config)  # fp16 file → float32 model
    out = model.infer(io["input_values"], io["seq_len"])
    assert out.shape == (1, 12, 1404)
    torch.testing.assert_close(out, io["a2m_out"], atol=ATOL, rtol=0)
    model.config.only_last_features = False  # official `_only_last_features = False`
    torch.testing.assert_close(
        model.infer(io["input_values"], io["seq_len"]), io["a2m_out_mean_hidden_states"], atol=ATOL, rtol=0
    )


def test_audio2pose_matches_official(oracle, oracle_dir):
    io, w2v, configs = oracle
    model = load_audio2pose(oracle_dir / "audio2pose_sd.pt", Audio2PoseConfig(latent_dim=32, encoder=w2v))
    for use_cache in (False, True):  # the official loop, and one position per step with cached layer inputs
        out = model.infer(
            io["input_values"], io["seq_len"], torch.tensor([io["id_seed"]]), use_cache=use_cache
        )
        assert out.shape == (1, 12, 6)
        torch.testing.assert_close(out, io["a2p_out"], atol=ATOL, rtol=0)


def test_alibi_bias_is_faceformer():
    assert alibi_slopes(8) == [2.0 ** -(i + 1) for i in range(8)]
    assert len(alibi_slopes(6)) == 6 and alibi_slopes(6)[:4] == alibi_slopes(4)
    bias = alibi_causal_bias(8, 5)
    assert bias.shape == (8, 5, 5)
    assert bias[0, 4, 1] == -0.5 * 3 and bias[7, 2, 0] == -2 / 256
    assert torch.all(bias.diagonal(dim1=1, dim2=2) == 0)
    assert torch.isinf(bias[:, 1, 2]).all() and torch.isinf(bias.triu(1)[:, 0, 1:]).all()


def test_alignment_mask_sees_only_own_frame():
    mask = audio_alignment_mask(3, 5)
    assert mask.dtype == torch.bool and mask.shape == (3, 5)
    assert (~mask).nonzero().tolist() == [[0, 0], [1, 1], [2, 2]]


def test_positional_table():
    pe = SinusoidalPositionalEncoding(8, max_len=10).pe
    assert pe.shape == (1, 10, 8)
    assert math.isclose(pe[0, 3, 2].item(), math.sin(3 / 10000 ** (2 / 8)), rel_tol=1e-6)
    assert math.isclose(pe[0, 3, 3].item(), math.cos(3 / 10000 ** (2 / 8)), rel_tol=1e-6)


def test_teacher_forcing_reproduces_generation(tiny_pose):
    """Feeding generated poses back in parallel (training path) gives the generated poses:
    the causal ALiBi mask and the one-frame audio mask leave no look-ahead."""
    memory = torch.randn(1, 20, 32)
    style = torch.tensor([5])
    generated = tiny_pose.generate(memory, style)
    previous = torch.cat([torch.zeros(1, 1, 6), generated[:, :-1]], dim=1)
    with torch.no_grad():
        parallel = tiny_pose.decode(tiny_pose.pose_map(previous), memory, style)
    torch.testing.assert_close(parallel, generated, atol=1e-5, rtol=1e-5)
    cached = tiny_pose.generate(memory, style, use_cache=True)
    torch.testing.assert_close(cached, generated, atol=1e-5, rtol=1e-5)
    context = torch.randn(1, 4, 6)  # continuing from known poses (windowed inference)
    torch.testing.assert_close(
        tiny_pose.generate(memory, style, context, use_cache=True),
        tiny_pose.generate(memory, style, context),
        atol=1e-5,
        rtol=1e-5,
    )


def test_batched_decode_equals_single(tiny_pose):
    memory, tokens = torch.randn(3, 9, 32), torch.randn(3, 9, 32)
    styles = torch.tensor([1, 2, 3])
    with torch.no_grad():
        batched = tiny_pose.decode(tokens, memory, styles)
        singles = torch.cat(
            [tiny_pose.decode(tokens[i : i + 1], memory[i : i + 1], styles[i : i + 1]) for i in range(3)]
        )
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=1e-5)


def test_training_forward_shapes_and_gradients(tiny_mesh, tiny_pose):
    x = torch.randn(2, 6400)
    tiny_mesh.train()
    loss = tiny_mesh(x, 12).abs().mean()
    loss.backward()
    assert tiny_mesh.in_fn.weight.grad is not None
    assert tiny_mesh.audio_encoder.feature_extractor.conv_layers[0].conv.weight.grad is None  # frozen
    tiny_pose.train()
    out = tiny_pose(x, 12, torch.randn(2, 12, 6), torch.tensor([0, 99]))
    assert out.shape == (2, 12, 6)


def test_out_fn_starts_at_zero(make_wav2vec2_config):
    from aniportrait_lib.audio import Audio2Mesh

    encoder = make_wav2vec2_config(
        hidden_size=16, num_hidden_layers=1, intermediate_size=16, conv_dim=[8] * 7,
        num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    model = Audio2Mesh(Audio2MeshConfig(latent_dim=8, encoder=encoder), random_encoder_ok=True).eval()
    assert torch.all(model.infer(torch.randn(1, 3200), 6) == 0)


def test_training_on_clips_shorter_than_a_specaugment_span(tiny_mesh):
    tiny_mesh.train()  # mask_time_length is 10 frames; a 6-frame clip must still train
    assert tiny_mesh(torch.randn(1, 3200), 6).shape == (1, 6, 1404)
