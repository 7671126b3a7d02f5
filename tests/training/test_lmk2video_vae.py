"""The small VAE's pre-training: the kit's lip-weighted L1 (``VaePretrainConfig.mouth_weight``)."""

import numpy as np
import pytest
import torch

from aniportrait_lib.landmarks.mouth import LIP_VERTICES
from aniportrait_lib.models.image_models import build_vae
from aniportrait_lib.training.lmk2video_config import VaePretrainConfig
from aniportrait_lib.training.lmk2video_vae import mouth_weight_map, pretrain_vae, reconstruct

SIZE = 32
MOUTH = (0.5, 0.75)  # normalised (x, y) of the lips in the synthetic frames
TINY_VAE = {
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "block_out_channels": [8, 8],
    "layers_per_block": 1,
    "latent_channels": 2,
    "norm_num_groups": 4,
    "sample_size": SIZE,
}


def _landmarks(n: int) -> np.ndarray:
    """(n, 468, 2): every point spread over the face, the lips a 0.2 × 0.1 patch around MOUTH."""
    rng = np.random.default_rng(0)
    lmks = rng.uniform(0.2, 0.8, (n, 468, 2))
    lips = list(LIP_VERTICES)
    lmks[:, lips] = np.array(MOUTH) + rng.uniform(-1, 1, (n, len(lips), 2)) * np.array([0.1, 0.05])
    return lmks


def _frames(n: int) -> np.ndarray:
    """Flat grey faces whose 'mouth' (an 8 × 4 patch at MOUTH) opens by a random number of dark rows."""
    rng = np.random.default_rng(1)
    frames = np.full((n, SIZE, SIZE, 3), 170, np.uint8)
    frames[:, : SIZE // 2] = 120  # some structure elsewhere
    x, y = int(MOUTH[0] * SIZE), int(MOUTH[1] * SIZE)
    for frame, rows in zip(frames, rng.integers(0, 5, n), strict=True):
        frame[y - 2 : y - 2 + rows, x - 4 : x + 4] = 20
    return frames


def test_the_weight_map_peaks_on_the_lips_and_is_one_far_from_them():
    weights = mouth_weight_map(_landmarks(3), SIZE, 4.0)
    assert weights.shape == (3, 1, SIZE, SIZE) and weights.dtype == torch.float32
    peak = np.unravel_index(int(weights[0, 0].argmax()), (SIZE, SIZE))
    assert abs(peak[0] - MOUTH[1] * SIZE) <= 2 and abs(peak[1] - MOUTH[0] * SIZE) <= 2
    assert 4.5 < float(weights.max()) <= 5.0
    assert float(weights[:, 0, :4, :4].max()) < 1.01  # a far corner
    assert torch.equal(mouth_weight_map(_landmarks(3), SIZE, 0.0), torch.ones(3, 1, SIZE, SIZE))


def test_the_mouth_weight_needs_a_landmark_set_per_frame():
    vae = build_vae(TINY_VAE)
    config = VaePretrainConfig(steps=1, batch_size=2, mouth_weight=4.0)
    with pytest.raises(ValueError, match="needs the landmarks of every frame"):
        pretrain_vae(vae, _frames(4), config)
    with pytest.raises(ValueError, match="4 frames, 3 landmark sets"):
        pretrain_vae(vae, _frames(4), config, _landmarks(3))


@pytest.mark.slow
def test_weighting_the_lips_reconstructs_the_mouth_better():
    frames, lmks = _frames(64), _landmarks(64)
    x, y = int(MOUTH[0] * SIZE), int(MOUTH[1] * SIZE)
    errors = {}
    for weight in (0.0, 8.0):
        torch.manual_seed(0)
        vae = build_vae(TINY_VAE)
        pretrain_vae(vae, frames, VaePretrainConfig(steps=150, batch_size=8, mouth_weight=weight), lmks)
        mouth = (slice(None), slice(y - 3, y + 4), slice(x - 5, x + 5))
        errors[weight] = np.abs(reconstruct(vae, frames)[mouth].astype(float) - frames[mouth]).mean()
    assert errors[8.0] < 0.7 * errors[0.0], errors  # measured: 15.1 vs 33.3 grey levels
