"""Benchmark Pose2VideoPipeline on the CPU: seconds per frame per denoising step, and peak RSS.

A mid-size random configuration (not the tiny oracle, not SD1.5): UNets with widths 64-256 at 256×256
(latents 32×32), a 64-channel pose guider, a small VAE and CLIP, guidance on (batch ×2). Each frame count
runs in its own process, so ``ru_maxrss`` is that run's peak; timing excludes a one-step warm-up call on
one window (first calls pay one-off kernel setup). Time includes CLIP, VAE encode, per-frame decode and
writing the H.264 file: frames are streamed to the writer and pose maps are not cached
(``on_frame``, ``cache_pose_features=False``), the long-video mode whose memory should not grow with length.

    python benchmarks/pipeline.py                    # 16 and 64 frames, 2 steps, prints a table + JSON
    python benchmarks/pipeline.py --frames 16 --steps 3 --size 128
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MID_UNET = {
    "attention_head_dim": 4,
    "block_out_channels": [64, 128, 256, 256],
    "cross_attention_dim": 128,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "sample_size": 32,
}
MID_VAE = {
    "block_out_channels": [32, 64, 64, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
MID_CLIP = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 224,
    "patch_size": 32,
    "projection_dim": 128,
}


def build_pipeline():
    """Random mid-size Pose2VideoPipeline (seeded)."""
    import torch

    from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
    from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
    from aniportrait_lib.models.scheduler import build_scheduler
    from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet
    from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline

    torch.manual_seed(0)
    guider = MultiScalePoseGuider(
        MultiScalePoseGuiderConfig(latent_channels=64, num_attention_heads=2, attention_head_dim=32)
    )
    parts = (build_vae(MID_VAE), build_clip_image_encoder(MID_CLIP), build_reference_unet(MID_UNET))
    pipe = Pose2VideoPipeline(*parts, build_denoising_unet(MID_UNET), guider, build_scheduler())
    for net in (pipe.vae, pipe.image_encoder, pipe.reference_unet, pipe.denoising_unet, pipe.pose_guider):
        net.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_once(frames: int, steps: int, size: int) -> dict:
    """One measurement in this process."""
    import numpy as np
    import PIL.Image
    import torch

    from aniportrait_lib.video_io import VideoWriter

    pipe = build_pipeline()
    poses = np.random.default_rng(0).integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    image = PIL.Image.new("RGB", (size, size), (128, 100, 90))
    warm = min(frames, 16)  # first calls pay one-off kernel setup; warm up on one window's shapes
    pipe(image, poses[:warm], poses[0], size, size, 1, 3.5, generator=torch.manual_seed(0))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, VideoWriter(Path(tmp) / "out.mp4", fps=30) as writer:
        # streamed: frames go to the mp4 as they are decoded; pose maps are not kept for all windows
        pipe(
            image, poses, poses[0], size, size, steps, 3.5, generator=torch.manual_seed(0),
            on_frame=lambda _, frame: writer.write(frame), cache_pose_features=False,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "frames": frames,
        "steps": steps,
        "size": size,
        "seconds_total": round(seconds, 2),
        "seconds_per_frame_per_step": round(seconds / (frames * steps), 4),
        "peak_rss_mib": round(peak_mib, 1),
        "torch_threads": torch.get_num_threads(),
    }


def measure_in_children(script: str, frame_counts: list[int], steps: int, size: int) -> list[dict]:
    """Run ``script --child`` once per frame count, each in a fresh process (so ``ru_maxrss`` is
    that run's own peak), and collect the JSON line each prints last."""
    results = []
    for frames in frame_counts:
        cmd = [sys.executable, script, "--child", "--frames", str(frames), "--steps", str(steps)]
        out = subprocess.run([*cmd, "--size", str(size)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def print_rss_growth(results: list[dict]) -> None:
    """Print how much the peak RSS grew from the first to the last run, then all results as JSON."""
    if len(results) > 1:
        growth = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"] - 1
        print(f"peak RSS growth from {results[0]['frames']} to {results[-1]['frames']} frames: {growth:+.1%}")
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, nargs="*", default=[16, 64])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args.frames[0], args.steps, args.size)))
        return
    results = measure_in_children(__file__, args.frames, args.steps, args.size)
    print(f"{'frames':>6} {'s/frame/step':>13} {'total s':>8} {'peak RSS MiB':>13}")
    for r in results:
        speed, total, rss = r["seconds_per_frame_per_step"], r["seconds_total"], r["peak_rss_mib"]
        print(f"{r['frames']:>6} {speed:>13} {total:>8} {rss:>13}")
    print_rss_growth(results)


if __name__ == "__main__":
    main()
