"""Full-size smoke benchmark: the released models' sizes (a stand-in folder) on this machine, end to end.

Needs a folder in the official layout, e.g. the random-valued stand-in of ``benchmarks/standin_weights.py``
(17.4 GB; nothing it renders means anything). Not part of ``make test``. Every run is its own process, so
each peak resident set size (``ru_maxrss``) is that run's. Four parts:

1. **loading**: ``resolve_weights("official:…")`` in float32 and bfloat16 on the CPU: seconds, peak RSS
   while loading, RSS after (issue #19's target: peak ≤ 8 GB);
2. **the CLI**: ``python -m aniportrait_lib.animate`` audio → video at ``--size`` for ``--frames`` frames and
   ``--steps`` steps, no ``--profile`` (the machine picks the device), fp32 and ``--dtype bf16``: its own
   seconds / peak RSS per stage;
3. **notebook 05's code path** in the ``gpu`` profile with the device forced to the CPU
   (``ANIPORTRAIT_DEVICE=cpu``): ``start_notebook`` → ``resolve_weights(placement=nb.placement)`` →
   ``audio_to_video``, seconds and peak RSS per stage;
4. **the hardware check**: ``animate --dry-run`` estimates vs the measured peak of the same run, for two
   settings, and a setting too large for this machine, refused with the settings that fit.

    python benchmarks/fullsize_smoke.py /tmp/standin
    python benchmarks/fullsize_smoke.py /tmp/standin --parts 4 --size 128 --frames 8
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PORTRAIT = REPO / "data_samples" / "portrait.png"

_LOAD = """
import sys, time
from aniportrait_lib.devices import resolve_placement
from aniportrait_lib.pipelines.selection import resolve_weights
from aniportrait_lib.pipelines.stages import StageMeter, current_rss_mib
meter = StageMeter()
with meter.stage("load"):
    models = resolve_weights("official:" + sys.argv[1], placement=resolve_placement("cpu", sys.argv[2]))
r = meter.records[0]
print(f"RESULT {r.seconds:.1f} {r.peak_rss_mib:.0f} {current_rss_mib():.0f}")
"""

_NOTEBOOK = """
import os, sys, dataclasses
from pathlib import Path
from aniportrait_lib.runner import start_notebook
from aniportrait_lib.pipelines.generate import audio_to_video
from aniportrait_lib.pipelines.selection import resolve_weights
from aniportrait_lib.pipelines.stages import StageMeter
folder, out, size, frames, steps, speech = sys.argv[1:7]
nb = start_notebook("05_generate_video", "gpu", out)  # as the notebook's first cell, with the device forced
print(nb.placement.describe())
stages = StageMeter()
with stages.stage("load weights"):
    models = resolve_weights("official:" + folder, placement=nb.placement, log=print)
config = dataclasses.replace(models.config, width=int(size), height=int(size), steps=int(steps),
                             max_frames=int(frames))
audio_to_video(sys.argv[7], speech, out_path=Path(out) / "nb05.mp4", config=config, weights=models,
               stages=stages)
for r in stages.records:
    print(f"  {r.stage:<36} {r.seconds:8.2f} s   peak RSS {r.peak_rss_mib:8.0f} MiB")
"""


def run_child(command: list[str], env: dict | None = None) -> tuple[int, str, float, float]:
    """(exit status, stdout+stderr, wall seconds, peak RSS MiB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})}, cwd=REPO)  # fmt: skip
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, output, time.perf_counter() - started, usage.ru_maxrss / 1024


def speech_clip(frames: int, folder: Path) -> Path:
    import soundfile as sf

    from aniportrait_lib.data.samples import load_speech

    speech = load_speech()
    path = folder / f"speech_{frames}.wav"
    sf.write(path, speech.samples[: int(speech.sample_rate * (frames + 0.5) / 30)], speech.sample_rate)
    return path


def animate(
    weights: Path, speech: Path, out: Path, size: int, frames: int, steps: int, *extra: str
) -> list[str]:
    return [sys.executable, "-m", "aniportrait_lib.animate", "--weights", f"official:{weights}",
            "--ref", str(PORTRAIT), "--audio", str(speech), "--out", str(out), "--size", str(size),
            "--length", str(frames), "--steps", str(steps), *extra]  # fmt: skip


def part_loading(weights: Path) -> None:
    print("\n1. loading the released models' sizes on the CPU (audio models included)")
    print(f"   {'dtype':<8} {'seconds':>8} {'peak RSS while loading':>24} {'RSS after':>10}")
    for dtype in ("fp32", "bf16"):
        code, output, _, _ = run_child([sys.executable, "-c", _LOAD, str(weights), dtype])
        if code:
            sys.exit(output)
        seconds, peak, after = re.search(r"RESULT (\S+) (\S+) (\S+)", output).groups()
        print(f"   {dtype:<8} {seconds:>8} {peak + ' MiB':>24} {after + ' MiB':>10}")


def _stage_lines(output: str) -> str:
    return "\n".join(
        line for line in output.splitlines() if "peak RSS" in line or line.startswith(("device:", "loaded"))
    )


def part_cli(weights: Path, tmp: Path, size: int, frames: int, steps: int) -> None:
    speech = speech_clip(frames, tmp)
    for extra in ([], ["--dtype", "bf16"]):
        label = " ".join(extra) or "(no --profile, --device or --dtype)"
        print(f"\n2. the CLI, {size}², {frames} frames, {steps} steps {label}")
        code, output, wall, peak = run_child(
            animate(weights, speech, tmp / "cli.mp4", size, frames, steps, *extra)
        )
        if code:
            sys.exit(output)
        print(_stage_lines(output))
        print(f"   whole process: {wall:.0f} s, peak RSS {peak:.0f} MiB")


def part_notebook(weights: Path, tmp: Path, size: int, frames: int, steps: int) -> None:
    what = f"{size}², {frames} frames, {steps} steps"
    print(f"\n3. notebook 05's code path, gpu profile, ANIPORTRAIT_DEVICE=cpu, {what}")
    speech = speech_clip(frames, tmp)
    command = [sys.executable, "-c", _NOTEBOOK, str(weights), str(tmp / "nb"), str(size), str(frames),
               str(steps), str(speech), str(PORTRAIT)]  # fmt: skip
    code, output, wall, peak = run_child(command, {"ANIPORTRAIT_DEVICE": "cpu"})
    if code:
        sys.exit(output)
    print(_stage_lines(output))
    print(f"   whole process: {wall:.0f} s, peak RSS {peak:.0f} MiB")


def _estimate_mib(output: str) -> float:
    value = re.search(r"peak host memory\s+([\d.]+) GiB", output)
    if value is None:
        sys.exit(output)
    return float(value.group(1)) * 1024


def part_plan(weights: Path, tmp: Path, settings: list[tuple[int, int, str]]) -> None:
    print("\n4. the hardware check: --dry-run's estimate vs the measured peak RSS of the same run (1 step)")
    print(f"   {'setting':<28} {'estimate':>10} {'measured':>10} {'ratio':>6}  dry run / run seconds")
    for size, frames, dtype in settings:
        speech = speech_clip(frames, tmp)
        args = animate(weights, speech, tmp / "plan.mp4", size, frames, 1, "--dtype", dtype)
        code, output, dry_wall, _ = run_child([*args, "--dry-run"])
        if code:
            sys.exit(output)
        estimate = _estimate_mib(output)
        code, output, wall, measured = run_child(args)
        if code:
            sys.exit(output)
        setting = f"{size}², {frames} frames, {dtype}"
        print(f"   {setting:<28} {estimate:>7.0f} MiB {measured:>6.0f} MiB {estimate / measured:>6.2f}  "
              f"{dry_wall:.0f} / {wall:.0f}")  # fmt: skip
    speech = speech_clip(16, tmp)
    code, output, _, _ = run_child([*animate(weights, speech, tmp / "big.mp4", 1024, 16, 25), "--dry-run"])
    print(f"   1024², 16 frames, fp32 --dry-run: exit {code}")
    print("   " + "\n   ".join(line for line in output.splitlines() if line.startswith(("  ", "error"))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", type=Path, help="a folder in the official layout (e.g. the stand-in)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--parts", type=int, nargs="*", default=[1, 2, 3, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if 1 in args.parts:
            part_loading(args.weights)
        if 2 in args.parts:
            part_cli(args.weights, tmp, args.size, args.frames, args.steps)
        if 3 in args.parts:
            part_notebook(args.weights, tmp, args.size, args.frames, args.steps)
        if 4 in args.parts:
            part_plan(args.weights, tmp, [(128, 16, "fp32"), (256, 16, "bf16")])


if __name__ == "__main__":
    main()
