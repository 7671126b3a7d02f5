"""CUDA check: the kit at full size on one NVIDIA GPU - generation per dtype, torch.compile, training steps.

Needs a folder in the official layout (the random-valued stand-in of ``benchmarks/standin_weights.py`` will
do: speed and memory do not depend on the values; nothing it renders means anything). Not part of
``make test``; nothing here runs without a CUDA device. Every measurement runs in its own process, so each
peak GPU memory (``torch.cuda.max_memory_allocated``) is that run's alone:

1. **generate**: pose → video with ``resolve_weights("official:…", placement=cuda/<dtype>)`` for float32,
   float16 and bfloat16: seconds to load, seconds per frame per denoising step (``--frames`` frames of
   ``--size``², ``--steps`` DDIM steps, guidance 3.5, 16/4 windows; after a one-step warm-up), peak GPU
   memory, and the video's difference from the float32 one (PSNR, max |difference| in [0, 1]);
2. **compile**: the same in bfloat16 with the denoising UNet under ``torch.compile``: seconds of the first
   (compiling) call, then seconds per frame per step and the difference from eager bfloat16;
3. **train**: ``python -m aniportrait_lib.train stage1`` / ``stage2`` with recipe ``gpu`` on a synthetic
   prepared dataset of ``--size``² frames (``--init official:WEIGHTS``; stage 2 from the folder's
   ``mm_sd_v15_v2.ckpt``), ``--train-steps`` optimizer steps in ``--mixed-precision``: seconds per step
   (``log.csv``, first step left out) and peak GPU memory.

    python benchmarks/standin_weights.py /tmp/standin
    python benchmarks/cuda_check.py /tmp/standin --out /tmp/cuda_check
    python benchmarks/cuda_check.py /tmp/standin --parts generate --dtypes bf16 --frames 16 --steps 2
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUIDANCE = 3.5


def _peak_gib() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
    }


def generate(
    weights: Path,
    dtype: str,
    frames: int,
    steps: int,
    size: int,
    out: Path,
    compiled: bool,
    device: str = "cuda",
) -> dict:
    """One generation run in this process; saves the video as uint8 ``.npy`` beside the results."""
    import numpy as np
    import PIL.Image
    import torch

    from aniportrait_lib.devices import resolve_placement
    from aniportrait_lib.pipelines.selection import resolve_weights

    placement = resolve_placement(device, dtype)
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    sync()
    start = time.perf_counter()
    models = resolve_weights(f"official:{weights}", audio=False, placement=placement)
    sync()
    load_seconds = time.perf_counter() - start
    pipe = models.pipeline
    result: dict = {"dtype": dtype, "compiled": compiled, "load_seconds": round(load_seconds, 1)}
    networks = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    result["weights_gib"] = round(
        sum(p.numel() * p.element_size() for m in networks for p in m.parameters()) / 2**30, 2
    )
    if compiled:
        pipe.denoising_unet.compile()  # in place: the pipeline still wires its attention processors
    rng = np.random.default_rng(0)
    poses = rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    image = PIL.Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    start = time.perf_counter()
    pipe(image, poses[:16], poses[0], size, size, 1, GUIDANCE, generator=torch.manual_seed(42))  # warm-up
    sync()
    result["first_call_seconds"] = round(time.perf_counter() - start, 1)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    video = pipe(image, poses, poses[0], size, size, steps, GUIDANCE, generator=torch.manual_seed(42)).videos
    sync()
    seconds = time.perf_counter() - start
    result |= {"frames": frames, "steps": steps, "size": size, "seconds": round(seconds, 2),
               "seconds_per_frame_per_step": round(seconds / (frames * steps), 4), **_peak_gib()}  # fmt: skip
    frames_uint8 = (video[0].float().clamp(0, 1).permute(1, 2, 3, 0).cpu().numpy() * 255).round()
    np.save(out / _video_file(dtype, compiled), frames_uint8.astype(np.uint8))
    return result


def train(weights: Path, stage: str, data: Path, run: Path, steps: int, precision: str) -> dict:
    """One training command in this process (``aniportrait_lib.train.main``); seconds per step: log.csv."""
    import torch

    from aniportrait_lib.train import main

    args = [stage, "--config", "gpu", "--data", str(data), "--output", str(run),
            "--init", f"official:{weights}", "--max-steps", str(steps), "--mixed-precision", precision,
            "--set", "train.checkpoint_every=100000"]  # fmt: skip
    if stage == "stage2":
        args += ["--motion-init", str(weights / "mm_sd_v15_v2.ckpt")]
    start = time.perf_counter()
    code = main(args)
    if code:
        raise SystemExit(f"{stage} failed with exit code {code}")
    with open(run / "training" / "log.csv") as file:
        seconds = [float(row["seconds"]) for row in csv.DictReader(file)]
    timed = seconds[1:] or seconds
    return {"stage": stage, "mixed_precision": precision, "steps_logged": len(seconds),
            "first_step_seconds": round(seconds[0], 2), "seconds_per_step": round(sum(timed) / len(timed), 3),
            "command_seconds": round(time.perf_counter() - start, 1), **_peak_gib(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}  # fmt: skip


def _child(*args: str) -> dict | None:
    """Run this script's child mode; its last stdout line is JSON. A failure is printed, not raised."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        print(f"FAILED: {' '.join(args)}\n{done.stderr[-4000:]}", flush=True)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def _video_file(dtype: str, compiled: bool) -> str:
    return f"video_{dtype}{'_compiled' if compiled else ''}.npy"


def _difference(videos: Path, run: dict, reference: str) -> dict:
    """PSNR over all pixels of the whole video, and the largest difference in [0, 1]."""
    import numpy as np

    from aniportrait_lib.evaluation.video_metrics import psnr

    a = np.load(videos / _video_file(run["dtype"], run["compiled"]))
    b = np.load(videos / _video_file(reference, False))
    whole = psnr(a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:]))  # frames stacked: one image
    largest = np.abs(a.astype(np.int16) - b).max() / 255
    return {"vs": reference, "psnr_db": round(whole, 2), "max_abs": round(float(largest), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", type=Path, help="a folder in the official layout (e.g. the stand-in)")
    parser.add_argument("--out", type=Path, required=True, help="results.json goes here")
    parser.add_argument("--videos", type=Path, help="the videos (.npy; default: --out)")
    parser.add_argument(
        "--parts", nargs="*", default=["generate", "train", "compile"], help="run in this order"
    )
    parser.add_argument("--dtypes", nargs="*", default=["fp32", "fp16", "bf16"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--mixed-precision", default="fp16", choices=["no", "fp16", "bf16"])
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # "cpu": smoke-test this script
    args = parser.parse_args()
    args.videos = args.videos or args.out
    if args.child is not None:
        kind, *params = args.child
        if kind == "generate":
            dtype, compiled = params
            result = generate(
                args.weights,
                dtype,
                args.frames,
                args.steps,
                args.size,
                args.videos,
                compiled == "1",
                args.device,
            )
        else:
            stage, data, run = params
            result = train(args.weights, stage, Path(data), Path(run), args.train_steps, args.mixed_precision)
        print(json.dumps(result))
        return
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("cuda_check: no CUDA device on this machine")
    args.out.mkdir(parents=True, exist_ok=True)
    args.videos.mkdir(parents=True, exist_ok=True)
    common = ["--device", args.device, "--size", str(args.size), "--frames", str(args.frames),
              "--steps", str(args.steps), "--train-steps", str(args.train_steps),
              "--mixed-precision", args.mixed_precision]  # fmt: skip
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else args.device
    results: dict = {"device": name, "torch": torch.__version__, "runs": []}

    def record(result: dict | None) -> None:
        if result is not None:
            results["runs"].append(result)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))

    def child(*params: str) -> None:
        record(_child(str(args.weights), "--out", str(args.out), "--videos", str(args.videos), *common,
                      "--child", *params))  # fmt: skip

    def differences() -> None:
        for run in results["runs"]:
            if "dtype" not in run:
                continue
            reference = "bf16" if run["compiled"] else "fp32"
            is_reference = run["dtype"] == reference and not run["compiled"]
            if not is_reference and (args.videos / _video_file(reference, False)).exists():
                run["difference"] = _difference(args.videos, run, reference)

    for part in args.parts:  # in the order given
        if part == "generate":
            for dtype in args.dtypes:
                child("generate", dtype, "0")
        elif part == "compile":
            child("generate", "bf16", "1")
        elif part == "train":
            sys.path.insert(0, str(REPO / "benchmarks"))
            from train_step import synthetic_prepared

            with tempfile.TemporaryDirectory() as tmp:
                data = synthetic_prepared(Path(tmp) / "data", clips=2, frames=40, size=args.size)
                for stage in ("stage1", "stage2"):
                    child("train", stage, str(data), str(Path(tmp) / stage))
        else:
            raise SystemExit(f"cuda_check: unknown part {part!r} (generate, compile, train)")
        differences()
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
