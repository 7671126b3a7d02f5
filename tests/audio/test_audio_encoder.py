"""The time-aligned wav2vec2 encoder: equal to transformers where it should be, exact chunking, loading."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import Wav2Vec2Model

from aniportrait_lib.audio.encoder import (
    TimeAlignedWav2Vec2,
    build_audio_encoder,
    find_wav2vec2_folder,
    wav2vec2_base_960h_config,
)


@pytest.fixture
def encoder(tiny_w2v_config) -> TimeAlignedWav2Vec2:
    torch.manual_seed(0)
    return TimeAlignedWav2Vec2(tiny_w2v_config).eval()


def test_base_config_facts():
    config = wav2vec2_base_960h_config()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.intermediate_size == 3072 and config.conv_dim == [512] * 7
    assert (config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups) == (128, 16)
    with torch.device("meta"):
        model = TimeAlignedWav2Vec2(config)
    assert model.receptive_field == (400, 320)
    assert not any(p.requires_grad for p in model.feature_extractor.parameters())  # frozen like the official


def test_encode_at_native_rate_equals_transformers(encoder):
    """Interpolating to the natural frame count is the identity, so the output is plain wav2vec2's."""
    x = torch.randn(2, 8000)
    native = encoder.conv_features(x).shape[1]
    reference = Wav2Vec2Model(encoder.config).eval()
    reference.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        expected = reference(x).last_hidden_state
        got = encoder.encode(x, native)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert set(encoder.state_dict()) == set(reference.state_dict())


def test_interpolates_to_exactly_seq_len(encoder):
    with torch.no_grad():
        assert encoder.encode(torch.randn(1, 6400), 12).shape == (1, 12, 32)
        assert encoder.encode(torch.randn(1, 100), 1).shape == (1, 1, 32)  # shorter than one receptive field


@pytest.mark.parametrize("chunk", [13, 10_000])
def test_chunked_conv_features_are_exact(encoder, chunk):
    x = torch.randn(2, 16000 + 123)
    with torch.no_grad():
        whole = encoder.conv_features(x)
        chunked = encoder.conv_features_chunked(x, chunk_frames=chunk)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=2e-5, rtol=1e-4)


def test_encode_long_equals_encode_within_one_window(encoder):
    x = torch.randn(1, 16000 * 4)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_long(x, 120, window_frames=200), encoder.encode(x, 120))


def test_encode_long_windows_stay_close(encoder):
    """Windowed attention is an approximation; with random weights it stays within ~15 % here."""
    x = torch.randn(1, 16000 * 8)
    with torch.no_grad():
        whole = encoder.encode(x, 240)
        windowed = encoder.encode_long(x, 240, window_frames=100, overlap_frames=30, chunk_frames=50)
    assert windowed.shape == whole.shape and torch.isfinite(windowed).all()
    assert (windowed - whole).abs().mean() < 0.15 * whole.abs().mean()


def test_mean_hidden_states_differs_from_last(encoder):
    x = torch.randn(1, 6400)
    with torch.no_grad():
        assert not torch.allclose(encoder.encode(x, 12), encoder.encode(x, 12, mean_hidden_states=True))


def test_random_encoder_warns_and_local_folder_loads(tmp_path, encoder, tiny_w2v_config):
    with pytest.warns(UserWarning, match="randomly initialised"):
        build_audio_encoder(tiny_w2v_config, None)
    folder = tmp_path / "wav2vec2-base-960h"
    encoder.save_pretrained(folder)
    assert find_wav2vec2_folder([tmp_path]) == folder
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = build_audio_encoder(tiny_w2v_config, folder)
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert not any(p.requires_grad for p in loaded.feature_extractor.parameters())  # frozen, as official
    assert all(p.requires_grad for p in loaded.encoder.parameters())
    with pytest.raises(ValueError, match="config.json missing"):
        build_audio_encoder(tiny_w2v_config, tmp_path / "empty")


def test_loads_a_released_style_folder(tmp_path, tiny_w2v_config):
    """The released folder holds a Wav2Vec2ForCTC (``wav2vec2.`` prefix, ``lm_head``) saved with the
    torch-2.0 weight-norm names (``weight_g`` / ``weight_v``): transformers maps both on load."""
    from transformers import Wav2Vec2ForCTC

    from aniportrait_lib.weights.audio_checkpoints import kit_to_official

    torch.manual_seed(3)
    ctc = Wav2Vec2ForCTC(tiny_w2v_config)
    tiny_w2v_config.save_pretrained(tmp_path)
    state = kit_to_official(ctc.state_dict())
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in state
    torch.save(state, tmp_path / "pytorch_model.bin")
    loaded = build_audio_encoder(tiny_w2v_config, tmp_path)
    for key, value in ctc.wav2vec2.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, atol=0, rtol=0)
