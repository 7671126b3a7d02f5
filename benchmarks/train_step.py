"""Benchmark: seconds per Lmk2Video stage-1 training step at a fixed small config, and peak RSS.

Builds the ``cpu`` profile's networks (UNets ``(32, 64, 128, 128)``, 1 layer per block, guider (b)),
its small VAE (random weights: speed does not depend on them) and tiny CLIP encoder, and a synthetic
in-memory dataset of ``--size``² frames, then times ``--steps`` optimizer steps of
:class:`~aniportrait_lib.training.lmk2video.Stage1Trainer` after ``--warmup`` untimed ones; then the
same for stage 2 (:class:`~aniportrait_lib.training.lmk2video_stage2.Stage2Trainer`: motion modules
only, batch 1, ``--frames`` frames per clip, gradient checkpointing off as on CPU it only costs time).
Peak RSS is the whole process's, after both stages.

With ``--scaling`` it measures instead the training command (``python -m aniportrait_lib.train stage1
--config cpu``) on synthetic *prepared* datasets (frames.mp4 + landmarks.npz + manifest, no MediaPipe):
samples per second with 1 and 2 processes (``accelerate launch --multi_gpu`` = gloo on a CPU machine; 2
processes on 2 cores share them, so this shows the data-parallel overhead, not a speed-up), and the peak
RSS of one training process on a small dataset and on one 10× larger (frames are read lazily, so it
should not grow with the dataset). The fixed small VAE is fitted once and shared by every run.

Usage::

    python benchmarks/train_step.py [--size 96] [--batch 4] [--frames 16] [--steps 10] [--threads 1]
    python benchmarks/train_step.py --scaling [--clips 4] [--clip-frames 150] [--prepared-size 256]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from aniportrait_lib.data.manifest import ClipLandmarks, Manifest, write_landmarks
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import build_stage1_networks, build_stage2_networks
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.train import launch_command
from aniportrait_lib.training.lmk2video import Stage1Trainer
from aniportrait_lib.training.lmk2video_config import Stage2TrainConfig
from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, FramePairDataset
from aniportrait_lib.training.lmk2video_stage2 import Stage2Trainer
from aniportrait_lib.video_io import write_video


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


def synthetic_prepared(root: Path, clips: int, frames: int, size: int) -> Path:
    """A prepared-dataset folder of ``clips`` clips (all "train") of ``size``² frames - a square moving over
    a gradient, cheap to encode - with random landmark clouds, written without MediaPipe."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    background = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                           np.full((size, size), 96.0)], axis=-1)  # fmt: skip
    entries = []
    for c in range(clips):
        folder = root / "clips" / f"clip{c:04d}"
        folder.mkdir(parents=True)
        video = np.repeat(background[None], frames, axis=0).astype(np.uint8)
        for t in range(frames):
            y, x = (t * 3 + c * 7) % (size // 2), (t * 5 + c * 11) % (size // 2)
            video[t, y : y + size // 4, x : x + size // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
        write_video(folder / "frames.mp4", video, 30)
        lmks = np.concatenate([rng.uniform(0.2, 0.8, (frames, 478, 2)), np.zeros((frames, 478, 1))], axis=2)
        write_landmarks(folder / "landmarks.npz", ClipLandmarks(
            lmks.astype(np.float32), np.zeros((frames, 468, 3)), np.tile(np.eye(4), (frames, 1, 1)),
            np.zeros((frames, 51), np.float32), np.ones(frames, bool), np.zeros(frames, bool),
            np.arange(frames),
        ))  # fmt: skip
        entries.append({"id": f"clip{c:04d}", "source": f"clip{c:04d}.mp4", "status": "prepared",
                        "split": "train", "fps": 30.0, "n_frames": frames, "image_size": size,
                        "has_audio": False})  # fmt: skip
    Manifest({"image_size": size, "fps": 30.0}, entries).save(root / "manifest.json")
    return root


def _command(args: list[str], processes: int) -> float:
    """Run the training command; returns the peak RSS in MB of its largest process."""
    launcher = launch_command(processes)
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, *launcher, *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr[-4000:])
    return int(done.stdout.strip().splitlines()[-1]) / 1024


_PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""
"""Run a command in a fresh process and print the peak RSS (KB) of its largest descendant."""


def _samples_per_second(run: Path, batch: int, processes: int) -> float:
    """From the run's log.csv, skipping the first (warm-up) step."""
    with open(run / "training" / "log.csv") as file:
        seconds = [float(row["seconds"]) for row in csv.DictReader(file)][1:]
    return batch * processes * len(seconds) / sum(seconds)


def scaling(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small = synthetic_prepared(root / "small", args.clips, args.clip_frames, args.prepared_size)
        large = synthetic_prepared(root / "large", 10 * args.clips, args.clip_frames, args.prepared_size)
        common = ["stage1", "--config", "cpu", "--set", f"train.image_size={args.size}", "--batch-size",
                  str(args.batch), "--set", "train.checkpoint_every=100000"]  # fmt: skip
        _command([*common, "--data", str(small), "--output", str(root / "frozen"), "--dry-run",
                  "--set", "vae.steps=2"], 1)  # fmt: skip
        rows = []
        for name, data, processes in (("small", small, 1), ("small", small, 2), ("10x", large, 1)):
            run = root / f"run-{name}-{processes}"
            shutil.copytree(root / "frozen" / "frozen", run / "frozen")
            peak = _command([*common, "--data", str(data), "--output", str(run),
                             "--max-steps", str(args.steps + 1)], processes)  # fmt: skip
            rows.append((name, processes, _samples_per_second(run, args.batch, processes), peak))
    setup = f"{args.prepared_size}² prepared frames, {args.clip_frames} per clip"
    print(
        f"stage 1, cpu recipe at {args.size}² ({setup}), batch {args.batch} per process, {args.steps} steps"
    )
    held = args.clips * args.clip_frames * args.prepared_size**2 * 3 / 2**20
    print(
        f"(held in memory, the 10x dataset's frames would be {10 * held:.0f} MB, the small one's {held:.0f})"
    )
    print(f"{'dataset':>8} {'clips':>6} {'processes':>9} {'samples/s':>10} {'peak RSS MB':>12}")
    for name, processes, speed, peak in rows:
        clips = args.clips * (10 if name == "10x" else 1)
        print(f"{name:>8} {clips:>6} {processes:>9} {speed:>10.2f} {peak:>12.0f}")
    small_rss, large_rss = rows[0][3], rows[2][3]
    print(f"RSS 10x / small: {large_rss / small_rss:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="frame side in pixels")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16, help="frames per stage-2 clip (official 16)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--guider", default="b", choices=["a", "b", "c"])
    parser.add_argument("--scaling", action="store_true", help="the training command on prepared datasets")
    parser.add_argument("--clips", type=int, default=4, help="--scaling: clips of the small dataset")
    parser.add_argument("--clip-frames", type=int, default=150, help="--scaling: frames per clip")
    parser.add_argument(
        "--prepared-size", type=int, default=256, help="--scaling: side of the prepared frames"
    )
    args = parser.parse_args()
    if args.scaling:
        scaling(args)
        return
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
            networks, vae, encoder, FramePairDataset.from_arrays(images, lmks, args.size), stage1, folder
        )
        first = seconds_per_step(trainer, args.warmup, args.steps)
        clips = ClipWindowDataset.from_arrays(images, lmks, args.size, num_frames=args.frames)
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
