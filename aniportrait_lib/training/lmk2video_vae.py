"""A small VAE for CPU-sized Lmk2Video: a short pre-training on corpus frames and latent-scale calibration.

The real model uses the frozen ``sd-vae-ft-mse``. The ``quick``/``cpu`` profiles cannot afford it, and a
randomly initialised ``AutoencoderKL`` encodes nothing useful, so the kit trains a small one for a minute
on the training frames (one portrait: easy to reconstruct) with L1 + a tiny KL term, then freezes it.

Kit option ``VaePretrainConfig.mouth_weight``: the L1 is weighted up around the lips
(:func:`mouth_weight_map`). A 96² face crop leaves the mouth a few latent pixels; a plain L1 spends the
small VAE's capacity on the large smooth areas and blurs the lips shut, and no model working in its latent
space can then open them. Measured on the cpu corpus (500 steps, 4 held-out clips, MediaPipe on the
reconstructions): mouth-opening correlation with the truth 0.43 → 0.75, landmark error 1.21 → 0.82 px,
whole-frame PSNR unchanged (28.3 dB).

The official pipelines multiply latents by ``0.18215`` (SD's ``1/std`` of its latents). To keep that
constant - and therefore the stock pipeline - :func:`calibrate_latent_scale` folds a scale into
``quant_conv`` (encoder side) and ``post_quant_conv`` (decoder side) so that ``0.18215 · latents`` has unit
standard deviation on the corpus frames, without changing any reconstruction.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers import AutoencoderKL

from aniportrait_lib.models.image_models import VAE_SCALING_FACTOR

from .lmk2video_config import VaePretrainConfig
from .lmk2video_data import mouth_weight_map, to_unit_range
from .optim import torch_threads

__all__ = ["calibrate_latent_scale", "mouth_weight_map", "pretrain_vae", "reconstruct"]


def pretrain_vae(
    vae: AutoencoderKL, frames: np.ndarray, config: VaePretrainConfig, lmks: np.ndarray | None = None
) -> list[float]:
    """Train ``vae`` in place on uint8 frames ``(N, S, S, 3)``; returns the loss per step.

    Loss: L1 of the reconstruction (from a sampled latent) + ``kl_weight`` · mean KL. With
    ``config.mouth_weight > 0`` the L1 is a weighted mean under :func:`mouth_weight_map` of ``lmks``
    (``(N, 468+, 2)`` normalised, one per frame).
    """
    if len(frames) == 0:
        raise ValueError("pretrain_vae needs at least one frame")
    if config.mouth_weight > 0 and (lmks is None or len(lmks) != len(frames)):
        raise ValueError(
            f"mouth_weight={config.mouth_weight} needs the landmarks of every frame "
            f"({len(frames)} frames, {'no' if lmks is None else len(lmks)} landmark sets)"
        )
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.learning_rate)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(config.steps, 1))
    vae.train()
    losses = []
    with torch_threads(config.num_threads):
        for _ in range(config.steps):
            index = torch.randint(len(frames), (config.batch_size,), generator=generator).numpy()
            images = to_unit_range(frames[index])
            posterior = vae.encode(images).latent_dist
            latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
            recon = vae.decode(latents).sample
            error = (recon - images).abs()
            if config.mouth_weight > 0:
                weights = mouth_weight_map(lmks[index], frames.shape[1], config.mouth_weight)
                error = error * weights / weights.mean()
            loss = error.mean() + config.kl_weight * posterior.kl().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            decay.step()
            losses.append(float(loss.detach()))
    vae.eval().requires_grad_(False)
    return losses


@torch.no_grad()
def calibrate_latent_scale(
    vae: AutoencoderKL, frames: np.ndarray, scaling: float = VAE_SCALING_FACTOR
) -> float:
    """Rescale the latent space so that ``scaling · latents`` has unit std on ``frames``; returns the factor.

    ``quant_conv`` outputs ``[mean, logvar]``: the mean rows are multiplied by ``k`` and ``2 ln k`` is added
    to the log-variance bias; ``post_quant_conv``'s weights are divided by ``k``. Decoding is unchanged.
    """
    latents = vae.encode(to_unit_range(frames[:64])).latent_dist.mean
    k = 1.0 / (scaling * float(latents.std()))
    channels = vae.config.latent_channels
    quant = vae.quant_conv
    quant.weight[:channels] *= k
    quant.bias[:channels] *= k
    quant.bias[channels:] += 2.0 * math.log(k)
    vae.post_quant_conv.weight /= k
    return k


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, frames: np.ndarray) -> np.ndarray:
    """uint8 frames ``(N, S, S, 3)`` → uint8 reconstructions through the latent mean."""
    out = vae.decode(vae.encode(to_unit_range(frames)).latent_dist.mean).sample
    return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().movedim(-3, -1).numpy()
