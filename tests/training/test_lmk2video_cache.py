"""The frame cache of stage 1 (training/lmk2video_cache.py): what the frozen image models make of each frame,
computed once, must be what the per-step encodes give; and a trainer that reads it learns what one that
encodes at every step learns (the tiny setup: tests/conftest.py TinyStage1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aniportrait_lib.models.image_models import build_vae
from aniportrait_lib.models.lmk2video import build_stage1_networks
from aniportrait_lib.training.lmk2video import Stage1Trainer
from aniportrait_lib.training.lmk2video_cache import FrameCache
from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, FramePairDataset


@pytest.fixture(scope="module")
def cache(tiny_stage1) -> FrameCache:
    vae, encoder = tiny_stage1.frozen
    return FrameCache.build(tiny_stage1.dataset, vae, encoder, batch_size=3)  # batches across clip ends


def cached_trainer(tiny_stage1, out_dir, frame_cache, seed: int = 0) -> Stage1Trainer:
    vae, encoder = tiny_stage1.frozen
    torch.manual_seed(seed)
    networks = build_stage1_networks(tiny_stage1.model())
    return Stage1Trainer(
        networks, vae, encoder, tiny_stage1.dataset, tiny_stage1.config(), out_dir, frame_cache
    )


def test_cached_posteriors_and_embeddings_equal_the_per_step_encodes(tiny_stage1, cache):
    dataset, (vae, encoder) = tiny_stage1.dataset, tiny_stage1.frozen
    assert len(cache) == len(dataset) == 10
    batch = dataset.batch(range(6))
    with torch.no_grad():
        targets = vae.encode(batch["pixel_values"]).latent_dist
        refs = vae.encode(batch["ref_pixel_values"]).latent_dist
        context = encoder(batch["clip_pixels"]).image_embeds
        uncond = encoder(torch.zeros_like(batch["clip_pixels"])).image_embeds
    # equal up to the convolutions' rounding, which depends on the batch's make-up (~2e-5 at values ~0.7)
    mean, std = cache.moments(batch["frame_ids"][:, 0])
    assert torch.allclose(mean, targets.mean, atol=2e-4) and torch.allclose(std, targets.std, atol=2e-4)
    mean, std = cache.moments(batch["frame_ids"][:, 1])
    assert torch.allclose(mean, refs.mean, atol=2e-4) and torch.allclose(std, refs.std, atol=2e-4)
    assert not torch.allclose(mean, targets.mean, atol=2e-4)  # targets and references differ
    assert torch.allclose(cache.context(batch["frame_ids"][:, 1], drop=False)[:, 0], context, atol=1e-6)
    assert torch.allclose(cache.context(batch["frame_ids"][:, 1], drop=True)[:, 0], uncond, atol=1e-6)


def test_frame_ids_name_the_frames_a_sample_was_made_of(tiny_stage1):
    dataset = tiny_stage1.dataset
    for position in (0, 7, 13):
        clip, target, ref = dataset.sample_of(position)
        ids = dataset[position]["frame_ids"].tolist()
        assert ids == [5 * clip + target, 5 * clip + ref]  # two clips of 5 frames, flat clip after clip
        flat = np.concatenate(dataset.source.all_frames)
        assert np.array_equal(flat[ids[0]], dataset.source.frames(clip, [target])[0])
    windows = ClipWindowDataset(dataset.source, seed=1, num_frames=3, strides=(1,))
    sample = windows[4]
    clip, indices, ref = windows.window_of(4)
    assert sample["frame_ids"].tolist() == [5 * clip + i for i in [*indices.tolist(), ref]]


def test_cached_pose_images_equal_freshly_drawn_ones(tiny_stage1):
    dataset = tiny_stage1.dataset
    first = dataset.batch(range(8))
    fresh = FramePairDataset(dataset.source, seed=dataset.seed)
    fresh._poses = None  # draw every time, as for a prepared folder
    again = fresh.batch(range(8))
    assert torch.equal(first["pose"], again["pose"]) and torch.equal(first["ref_pose"], again["ref_pose"])
    assert dataset._poses  # the cache was used


def test_a_trainer_reading_the_cache_takes_the_same_steps(tiny_stage1, cache, tmp_path):
    encoding = tiny_stage1.trainer(tmp_path / "encoding")
    cached = cached_trainer(tiny_stage1, tmp_path / "cached", cache)
    assert "clip_pixels" not in cached.dataset[0] and "clip_pixels" in tiny_stage1.dataset[0]
    drops = []
    for step in (0, 3):  # seed 3: step 3 drops the condition (uncond_ratio 0.3), so both branches run
        batch = tiny_stage1.dataset.batch(range(2 * step, 2 * step + 2))
        drops.append(encoding.draws(step).uniform() < encoding.config.uncond_ratio)
        gradients = []
        for trainer in (encoding, cached):
            trainer.train_mode()
            trainer.optimizer.zero_grad(set_to_none=True)
            loss = trainer.loss(batch, trainer.draws(step))
            loss.backward()
            grads = [p.grad.double().flatten() for p in trainer.networks.parameters() if p.grad is not None]
            gradients.append((float(loss.detach()), torch.cat(grads)))
        (loss_a, a), (loss_b, b) = gradients
        assert loss_a == pytest.approx(loss_b, rel=1e-5)
        # the whole gradient, not each tensor: some are 0 but for rounding (cross-attention to one CLIP token)
        assert a.shape == b.shape and float((a - b).norm() / a.norm()) < 1e-3
    assert drops == [False, True]
    # (whole runs part after a few steps: Adam's first steps amplify the ~1e-5 differences of the latents)


def test_a_trainer_refuses_a_cache_of_other_frames_or_another_vae(tiny_stage1, cache, tmp_path):
    vae, encoder = tiny_stage1.frozen
    networks = build_stage1_networks(tiny_stage1.model())
    other_frames = FramePairDataset(tiny_stage1.dataset.source, seed=5)  # same source: accepted
    Stage1Trainer(networks, vae, encoder, other_frames, tiny_stage1.config(), tmp_path / "a", cache)
    copy = FramePairDataset.from_arrays(
        tiny_stage1.dataset.source.all_frames, tiny_stage1.dataset.source.all_lmks, tiny_stage1.size
    )
    with pytest.raises(ValueError, match="another dataset's frames"):
        Stage1Trainer(networks, vae, encoder, copy, tiny_stage1.config(), tmp_path / "b", cache)
    torch.manual_seed(5)
    retrained = build_vae(tiny_stage1.model().vae).eval()
    with pytest.raises(ValueError, match="other VAE or image encoder"):
        Stage1Trainer(networks, retrained, encoder, tiny_stage1.dataset, tiny_stage1.config(), tmp_path / "c",
                      cache)  # fmt: skip
