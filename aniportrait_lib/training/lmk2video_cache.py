"""What the frozen image models make of each training frame, computed once instead of at every step.

Stage 1 encodes each step's target and reference frames with the frozen VAE and the reference frame with
the frozen CLIP image encoder (:meth:`~.lmk2video.Stage1Trainer.encode`). Neither model changes during
training and the frames are not augmented (:mod:`.lmk2video_data`: "no augmentation"), so what they give for
a frame is the same at every step. :class:`FrameCache` holds, per frame of a dataset's source,

* the VAE posterior's ``mean`` and ``std`` (the latent *sample* ``mean + std · ε`` still takes a fresh ``ε``
  from the step's draws, as the official ``.sample()``: the cache holds the distribution, not a sample);
* the CLIP image embedding of the frame (as a reference), and the embedding of the zeroed pixels the
  unconditional drop feeds.

Measured on the cpu profile (96² frames, batch 4, one thread, a busy 2-core machine): the per-step VAE
encodes took ~50 ms and the CLIP input preparation of the data loader ~3 ms per sample, out of ~480 ms per
step; building the cache for the 2,507 training frames takes a few seconds and serves every run of the study.
The values equal the per-step encodes up to float rounding (encoding in batches of 64 instead of 4).

The cache is for sources held in memory (the mini corpus): it holds ``2 · C · (S/8)²`` floats per frame,
23 MB for the cpu corpus, which is no size for a prepared dataset of real video at 512².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL
from einops import rearrange
from transformers import CLIPVisionModelWithProjection

from .checkpoint import state_signature
from .lmk2video_data import ClipSource, FramePairDataset, to_unit_range

__all__ = ["FrameCache", "image_models_state"]


def image_models_state(vae: AutoencoderKL, image_encoder: CLIPVisionModelWithProjection) -> dict:
    """The named tensors of the two frozen image models (the stage-1 trainer's fixed state)."""
    state = {f"vae.{k}": v for k, v in vae.state_dict().items()}
    return state | {f"image_encoder.{k}": v for k, v in image_encoder.state_dict().items()}


@dataclass
class FrameCache:
    """Per-frame VAE posterior and CLIP embedding of one :class:`~.lmk2video_data.ClipSource`.

    Frames are indexed by their *flat* index in the source (clip after clip), as the datasets'
    ``frame_ids`` give them.
    """

    source: ClipSource  # the frames it was built from (a trainer checks it is its dataset's)
    mean: torch.Tensor  # (N, C, h, w) VAE posterior mean, unscaled
    std: torch.Tensor  # (N, C, h, w) VAE posterior standard deviation
    clip_embeds: torch.Tensor  # (N, D) CLIP image embeddings of the frames (as reference images)
    uncond_embed: torch.Tensor  # (D,) the embedding of zeroed CLIP pixels (the unconditional drop)
    signature: dict  # state_signature of the VAE and image encoder it was computed with

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        dataset: FramePairDataset,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModelWithProjection,
        batch_size: int = 64,
    ) -> FrameCache:
        """Encode every frame of ``dataset.source`` once (on the models' device; stored on the CPU)."""
        source, device = dataset.source, next(vae.parameters()).device
        means, stds, embeds = [], [], []
        for clip, length in enumerate(source.lengths.tolist()):
            for first in range(0, length, batch_size):
                indices = list(range(first, min(first + batch_size, length)))
                frames = source.frames(clip, indices)
                dist = vae.encode(to_unit_range(frames).to(device)).latent_dist
                means.append(dist.mean.float().cpu())
                stds.append(dist.std.float().cpu())
                pixels = torch.stack([dataset.clip_input(f) for f in frames]).to(device)
                embeds.append(image_encoder(pixels).image_embeds.float().cpu())
        zeros = torch.zeros(1, *dataset.clip_input(frames[0]).shape, device=device)
        uncond = image_encoder(zeros).image_embeds[0].float().cpu()
        signature = state_signature(image_models_state(vae, image_encoder))
        return cls(source, torch.cat(means), torch.cat(stds), torch.cat(embeds), uncond, signature)

    def __len__(self) -> int:
        return len(self.mean)

    def moments(self, frame_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mean, std)``: frames ``(B,)`` → ``(B, C, h, w)``; ``(B, F)`` → ``(B, C, F, h, w)``."""
        flat = frame_ids.reshape(-1).long()
        mean, std = self.mean[flat], self.std[flat]
        if frame_ids.ndim == 2:
            mean, std = (rearrange(x, "(b f) c h w -> b c f h w", b=len(frame_ids)) for x in (mean, std))
        return mean, std

    def context(self, frame_ids: torch.Tensor, drop: bool) -> torch.Tensor:
        """CLIP context ``(B, 1, D)`` of reference frames ``(B,)`` (``drop``: the zeroed-pixel embedding)."""
        if drop:
            return self.uncond_embed.expand(len(frame_ids), 1, -1).clone()
        return self.clip_embeds[frame_ids.long()].unsqueeze(1)
