"""Benchmark Pose2VideoPipeline on the CPU: seconds per frame per denoising step, and peak RSS.

A mid-size random configuration (not the tiny oracle, not SD1.5): UNets with widths 64-256 at 256×256
(latents 32×32), a 64-channel pose guider, a small VAE and CLIP, guidance on (batch ×2). Each frame count
runs in its own process, so ``ru_maxrss`` is that run's peak; timing excludes a one-step warm-up call on
one window (first calls pay one-off kernel setup). Time includes CLIP, VAE encode, per-frame decode and
writing the H.264 file: frames are streamed to the writer and pose maps are not cached
(``on_frame``, ``cache_pose_features=False``), the long-video mode whose memory should not grow with length.

    python benchmarks/pipeline.py                    # 16 and 64 frames, 2 steps, prints a table + JSON
    python benchmarks/pipeline.py --frames 16 --steps 3 --size 128

``--compare REF`` times the kit at another commit against this checkout on the mid-size workload of
``../shared/perf/midsize_configs.json`` (the SD1.5 block layout at widths 64/128/256/256, the official
motion-module settings, 256², 6 DDIM steps, guidance 3.5, windows 16/4, 24 frames; random weights, every
all-zero parameter refilled from N(0, 0.02) so that no block is a no-op). ``REF`` is checked out in a
temporary worktree; the two are run alternately, each run in a fresh process, and the script prints each
one's seconds per frame per step, the median ratio (this checkout / REF) and the largest difference
between the two decoded videos (values in [0, 1]):

    python benchmarks/pipeline.py --compare 1eae3e7            # 3 alternating runs each
    python benchmarks/pipeline.py --compare 1eae3e7 --runs 5 --frames 48
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIDSIZE_CONFIGS = REPO.parent / "shared" / "perf" / "midsize_configs.json"
MIDSIZE_NETWORKS = ("vae", "image_encoder", "reference_unet", "denoising_unet", "pose_guider")

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


# --- --compare: the mid-size workload at two commits ------------------------------------------------
# The child functions below run with ``PYTHONPATH`` pointing at either checkout, so they use only entry
# points both have had since 1eae3e7 (the build functions and the pipeline's constructor and call).


def build_midsize(configs: dict) -> dict:
    """The mid-size networks, built from ``midsize_configs.json`` (random initial weights)."""
    from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
    from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
    from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet

    heads = configs["pose_guider"].get("Transformer2DModel_overrides", {})
    guider = MultiScalePoseGuiderConfig(
        latent_channels=configs["pose_guider"]["noise_latent_channels"],
        use_attention=configs["pose_guider"].get("use_ca", True),
        num_attention_heads=heads.get("num_attention_heads", 16),
        attention_head_dim=heads.get("attention_head_dim", 88),
    )
    return {
        "vae": build_vae(configs["vae"]),
        "image_encoder": build_clip_image_encoder(configs["clip_vision"]),
        "reference_unet": build_reference_unet(configs["unet2d"]),
        "denoising_unet": build_denoising_unet(configs["unet3d"]),
        "pose_guider": MultiScalePoseGuider(guider),
    }


def write_midsize_weights(folder: Path) -> None:
    """Seeded random weights for every mid-size network, one safetensors file each (kit key names).

    Parameters a network initialises to zero (output convolutions, motion modules' ``proj_out``, the
    guider's zero convolutions) are refilled from N(0, 0.02): a zero block would be skipped work-free and
    the two commits' outputs would agree trivially there."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    networks = build_midsize(json.loads(MIDSIZE_CONFIGS.read_text()))
    refill = torch.Generator().manual_seed(1)
    for name, net in networks.items():
        state = {}
        for key, value in net.state_dict().items():
            if value.is_floating_point() and not value.any() and "running" not in key:
                value = torch.randn(value.shape, generator=refill) * 0.02
            state[key] = value.detach().contiguous().clone()
        save_file(state, str(folder / f"{name}.safetensors"))


def run_midsize(weights: Path, frames: int, steps: int, size: int, video_path: Path | None) -> dict:
    """One timed mid-size generation with the kit importable from ``PYTHONPATH`` (either checkout)."""
    import numpy as np
    import PIL.Image
    import torch
    from safetensors.torch import load_file

    from aniportrait_lib.models.scheduler import DDIMConfig, build_scheduler
    from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline

    configs = json.loads(MIDSIZE_CONFIGS.read_text())
    networks = build_midsize(configs)
    for name, net in networks.items():
        net.load_state_dict(load_file(str(weights / f"{name}.safetensors")), strict=True)
        net.eval()
    pipe = Pose2VideoPipeline(**networks, scheduler=build_scheduler(DDIMConfig(**configs["scheduler"])))
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    poses = rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    image = PIL.Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    pipe(image, poses[:16], poses[0], size, size, 1, 3.5, generator=torch.manual_seed(42))  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    video = pipe(image, poses, poses[0], size, size, steps, 3.5, generator=torch.manual_seed(42)).videos
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if video_path is not None:
        np.save(video_path, video.numpy())
    return {
        "seconds_total": round(seconds, 2),
        "seconds_per_frame_per_step": round(seconds / (frames * steps), 4),
        "cpu_seconds_per_frame_per_step": round(cpu_seconds / (frames * steps), 4),
        "torch_threads": torch.get_num_threads(),
    }


def _child(root: Path, *args: str) -> dict:
    """Run this script's child mode with the kit of checkout ``root``; its last stdout line is JSON."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    if out.returncode != 0:
        raise SystemExit(f"benchmark run failed with the kit at {root}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(ref: str, runs: int, frames: int, steps: int, size: int) -> dict:
    """Alternate runs of ``ref`` (a temporary worktree) and this checkout; print ratio and max difference."""
    import numpy as np

    if not MIDSIZE_CONFIGS.is_file():
        raise SystemExit(f"missing {MIDSIZE_CONFIGS}: the mid-size workload ships with ../shared/perf")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], capture_output=True, text=True, cwd=REPO, check=False
    )
    if commit.returncode != 0:
        raise SystemExit(f"--compare: {ref!r} is not a commit of {REPO}")
    with tempfile.TemporaryDirectory(prefix="aniportrait-compare-") as tmp:
        tmp = Path(tmp)
        worktree, weights = tmp / "ref", tmp / "weights"
        weights.mkdir()
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--detach", "--quiet", str(worktree), ref], check=True)
        try:
            _child(REPO, "--write-midsize-weights", str(weights))
            sides = {f"{ref} ({commit.stdout.strip()})": worktree, "HEAD (this checkout)": REPO}
            times: dict[str, list[float]] = {label: [] for label in sides}
            args = ["--midsize-child", str(weights), "--frames", str(frames), "--steps", str(steps)]
            for run in range(runs):
                for index, (label, root) in enumerate(sides.items()):
                    video = tmp / f"video{index}.npy"
                    keep = ["--video", str(video)] if run == 0 else []
                    result = _child(root, *args, "--size", str(size), *keep)
                    times[label].append(speed := result["seconds_per_frame_per_step"])
                    cpu = result["cpu_seconds_per_frame_per_step"]
                    print(f"run {run + 1}/{runs} {label}: {speed} s/frame/step (CPU time {cpu})", flush=True)
            difference = float(np.abs(np.load(tmp / "video0.npy") - np.load(tmp / "video1.npy")).max())
        finally:
            subprocess.run([*git, "remove", "--force", str(worktree)], check=False)
    (ref_label, ref_times), (head_label, head_times) = times.items()
    ratio = statistics.median(head_times) / statistics.median(ref_times)
    paired = [h / r for h, r in zip(head_times, ref_times, strict=True)]
    summary = {
        "workload": {"frames": frames, "steps": steps, "size": size, "windows": "16/4", "guidance": 3.5},
        "seconds_per_frame_per_step": times,
        "median_ratio": round(ratio, 3),
        "paired_ratios": [round(r, 3) for r in paired],
        "max_abs_video_difference": difference,
    }
    print(f"median s/frame/step: {ref_label} {statistics.median(ref_times):.4f}, "
          f"{head_label} {statistics.median(head_times):.4f}")  # fmt: skip
    print(f"HEAD / {ref}: {ratio:.3f} (paired runs: {', '.join(f'{r:.3f}' for r in paired)})")
    print(f"max |video difference|: {difference:.2e}")
    print(json.dumps(summary))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, nargs="*", help="default 16 and 64; --compare: 24")
    parser.add_argument("--steps", type=int, help="default 2; --compare: 6")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--compare", metavar="REF", help="time the kit at git REF against this checkout")
    parser.add_argument("--runs", type=int, default=3, help="--compare: runs of each side (alternating)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write-midsize-weights", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--midsize-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_midsize_weights:
        write_midsize_weights(args.write_midsize_weights)
        print(json.dumps({"written": str(args.write_midsize_weights)}))
        return
    if args.midsize_child:
        frames = args.frames[0]
        print(json.dumps(run_midsize(args.midsize_child, frames, args.steps, args.size, args.video)))
        return
    if args.compare:
        frames = args.frames[0] if args.frames is not None else 24
        compare(args.compare, args.runs, frames, args.steps or 6, args.size)
        return
    if args.child:
        print(json.dumps(run_once(args.frames[0], args.steps, args.size)))
        return
    results = measure_in_children(__file__, args.frames or [16, 64], args.steps or 2, args.size)
    print(f"{'frames':>6} {'s/frame/step':>13} {'total s':>8} {'peak RSS MiB':>13}")
    for r in results:
        speed, total, rss = r["seconds_per_frame_per_step"], r["seconds_total"], r["peak_rss_mib"]
        print(f"{r['frames']:>6} {speed:>13} {total:>8} {rss:>13}")
    print_rss_growth(results)


if __name__ == "__main__":
    main()
