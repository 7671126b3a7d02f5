"""Benchmark: seconds per Lmk2Video stage-1 training step at a fixed small config, and peak RSS.

Builds the ``cpu`` profile's networks (UNets ``(32, 64, 128, 128)``, 1 layer per block, guider (b)),
its small VAE (random weights: speed does not depend on them) and tiny CLIP encoder, and a synthetic
in-memory dataset of ``--size``² frames, then times ``--steps`` optimizer steps of
:class:`~aniportrait_lib.training.lmk2video.Stage1Trainer` after ``--warmup`` untimed ones; then the
same for stage 2 (:class:`~aniportrait_lib.training.lmk2video_stage2.Stage2Trainer`: motion modules
only, batch 1, ``--frames`` frames per clip, gradient checkpointing off as on CPU it only costs time).
Peak RSS is the whole process's, after both stages.

Usage::

    python benchmarks/train_step.py [--size 96] [--batch 4] [--frames 16] [--steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
import warnings

import numpy as np
import torch

from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import build_stage1_networks, build_stage2_networks
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.training.lmk2video import Stage1Trainer
from aniportrait_lib.training.lmk2video_config import Stage2TrainConfig
from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, FramePairDataset
from aniportrait_lib.training.lmk2video_stage2 import Stage2Trainer


def synthetic_arrays(size: int, clips: int = 2, frames: int = 20) -> tuple[list, list]:
    """Random frames with random landmark clouds (drawn as pose images): the cost is what matters."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(clips)]
    lmks = [rng.uniform(0.2, 0.8, (frames, 468, 2)).astype(np.float32) for _ in range(clips)]
    return images, lmks


def seconds_per_step(trainer, warmup: int, steps: int) -> float:
    trainer.train(stop_after=warmup)
    start = time.perf_counter()
    trainer.train(stop_after=steps)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="frame side in pixels")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16, help="frames per stage-2 clip (official 16)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--guider", default="b", choices=["a", "b", "c"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    profile = stage_configs("cpu").lmk2video
    profile.stage1 = dataclasses.replace(
        profile.stage1, image_size=args.size, batch_size=args.batch, num_threads=args.threads,
        max_steps=args.warmup + args.steps, checkpoint_every=10**9,
    )  # fmt: skip
    profile.model.guider = args.guider
    torch.manual_seed(0)
    vae = build_vae({**profile.model.vae, "sample_size": args.size})
    encoder = build_clip_image_encoder(profile.model.clip)
    networks = build_stage1_networks(profile.model)
    trainable = sum(p.numel() for p in networks.parameters())
    images, lmks = synthetic_arrays(args.size, frames=max(20, args.frames))
    stage1 = profile.stage1
    with tempfile.TemporaryDirectory() as folder:
        trainer = Stage1Trainer(
            networks, vae, encoder, FramePairDataset(images, lmks, args.size), stage1, folder
        )
        first = seconds_per_step(trainer, args.warmup, args.steps)
        clips = ClipWindowDataset(images, lmks, args.size, num_frames=args.frames)
        stage2 = Stage2TrainConfig(**{**vars(stage1), "batch_size": 1, "gradient_checkpointing": False,
                                      "num_frames": args.frames})  # fmt: skip
        second_networks = build_stage2_networks(trainer.unwrapped, profile.model.unet)
        motion = sum(p.numel() for n, p in second_networks.named_parameters() if "motion_modules" in n)
        trainer2 = Stage2Trainer(second_networks, vae, encoder, clips, stage2, folder + "/stage2")
        second = seconds_per_step(trainer2, args.warmup, args.steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.size}² frames, {args.threads} thread(s), guider ({args.guider})")
    print(f"stage 1: batch {args.batch} pairs, {trainable / 1e6:.2f} M trained parameters")
    print(f"  {first:.3f} s per optimizer step ({args.batch / first:.1f} pairs/s)")
    print(f"stage 2: batch 1 × {args.frames} frames, {motion / 1e6:.2f} M motion-module parameters trained")
    print(f"  {second:.3f} s per optimizer step ({args.frames / second:.1f} frames/s)")
    print(f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
