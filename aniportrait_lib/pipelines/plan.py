"""Will a generation run fit this machine, and how long will it take? Measured, not looked up.

``python -m aniportrait_lib.animate ... --dry-run`` loads the weights, runs the real pipeline twice at two
small sizes (:func:`calibrate`: 64² and 128², the asked frames per window, guidance and dtype, one and two
denoising steps each), and extrapolates (:func:`estimate`) to the asked size:

* **memory** of each phase grows linearly with what it holds at once: the denoising phase with the latent
  tokens of one guided window (``window frames × guidance branches × H/8 × W/8``), the decoding phase with
  the pixels of one frame. Two sizes give each phase's slope and intercept; the peak is the weights' resident
  memory (measured after loading) plus the larger phase. Host memory is the process's RSS; on CUDA the device
  memory is torch's peak allocation (plus the weights on the device).
* **time** of one frame pass of one denoising step grows linearly with the latent tokens per frame (a fixed
  cost per pass plus the layers' work per token; self-attention's quadratic part, which matters from about
  512², is not fitted and makes the estimate low there); a step costs that times the frame passes of all
  windows (both guidance branches).

:func:`machine_memory` says what the machine has (``MemAvailable`` of ``/proc/meminfo`` plus what this
process already holds; ``torch.cuda.mem_get_info`` on a GPU), and :func:`fitting_settings` searches the
nearest settings that fit (lower precision, then smaller frames, then shorter windows) for the refusal
message. Measured figures for the released model sizes are in the README ("How much memory and time").
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from aniportrait_lib.config import GenerateConfig
from aniportrait_lib.host_memory import release_freed_memory

from .context import context_windows
from .stages import current_rss_mib

__all__ = [
    "Calibration",
    "Plan",
    "calibrate",
    "estimate",
    "fitting_settings",
    "machine_memory",
    "plan_run",
    "weights_mib",
]

CALIBRATION_SIZES = (64, 128)  # square frame sides of the two calibration runs (multiples of 64)
CALIBRATION_FRAMES = (
    4  # frames per calibration window: memory is fitted per window token, time per frame pass
)
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pth", ".pt", ".ckpt"}


@dataclass(frozen=True)
class PhaseFit:
    """``value(x) = intercept + slope · x`` fitted through two measured points."""

    intercept: float
    slope: float

    @classmethod
    def through(cls, x0: float, y0: float, x1: float, y1: float) -> PhaseFit:
        slope = max((y1 - y0) / (x1 - x0), 0.0)
        return cls(max(y0 - slope * x0, 0.0), slope)

    def __call__(self, x: float) -> float:
        return self.intercept + self.slope * x


@dataclass(frozen=True)
class Calibration:
    """What the calibration runs measured (MiB and seconds)."""

    device: str
    dtype: str
    window_frames: int  # frames per window in the calibration runs
    branches: int  # 2 with classifier-free guidance, else 1
    loaded_host_mib: float  # process RSS with the weights loaded
    loaded_device_mib: float  # CUDA: memory allocated with the weights loaded (0 elsewhere)
    denoise_mib: PhaseFit  # extra memory while denoising, by window tokens (frames · branches · h/8 · w/8)
    decode_mib: PhaseFit  # extra memory while decoding, by frame pixels
    seconds_per_pass: PhaseFit  # one frame pass of one denoising step, by tokens per frame


@dataclass(frozen=True)
class Plan:
    """The estimate for one setting and what the machine has (MiB, seconds)."""

    config: GenerateConfig
    frames: int
    device: str
    dtype: str
    host_peak_mib: float
    device_peak_mib: float | None  # None on the CPU (there the host memory is the device memory)
    seconds_per_step: float
    seconds_denoising: float
    host_available_mib: float
    device_available_mib: float | None

    @property
    def fits(self) -> bool:
        host_ok = self.host_peak_mib <= self.host_available_mib
        device_ok = self.device_peak_mib is None or self.device_peak_mib <= (self.device_available_mib or 0)
        return host_ok and device_ok

    def settings(self) -> str:
        """Its command-line settings, e.g. ``--size 512x512 --dtype bf16 --context-frames 16``."""
        c = self.config
        short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[self.dtype]
        return f"--size {c.width}x{c.height} --dtype {short} --context-frames {c.context_frames}"

    def table(self) -> list[tuple[str, str]]:
        """(what, value) rows for people."""
        gib = lambda mib: f"{mib / 1024:.1f} GiB"  # noqa: E731 - a formatter, local to the table
        rows = [
            ("settings", f"{self.settings()} --steps {self.config.steps} ({self.frames} frames)"),
            ("device, dtype", f"{self.device}, {self.dtype}"),
            ("peak host memory", f"{gib(self.host_peak_mib)} of {gib(self.host_available_mib)} available"),
        ]
        if self.device_peak_mib is not None:
            available = self.device_available_mib or 0.0
            rows.append(("peak device memory", f"{gib(self.device_peak_mib)} of {gib(available)} free"))
        rows += [
            ("time per denoising step", f"{self.seconds_per_step:.1f} s"),
            ("denoising, all steps", f"{self.seconds_denoising / 60:.1f} min (decoding and writing on top)"),
            ("verdict", "fits" if self.fits else "does NOT fit"),
        ]
        return rows


def machine_memory(device: str) -> tuple[float, float | None]:
    """(host MiB this process may use, device MiB free or None on the CPU).

    Host: ``MemAvailable`` (Linux) plus this process's private memory, else the physical memory. Device:
    CUDA's free memory plus what torch already holds; on MPS torch's recommended maximum.
    """
    host = math.nan
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        # plus the private memory this process holds; its file-backed pages (memory-mapped weights) are page
        # cache that MemAvailable already counts
        host = int(fields["MemAvailable"].split()[0]) / 1024 + _anonymous_rss_mib()
    except (OSError, KeyError, ValueError):
        try:
            import os

            host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (ValueError, OSError, AttributeError):
            pass
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return host, free / 2**20 + torch.cuda.memory_allocated(torch.device(device)) / 2**20
    if device == "mps":
        return host, torch.mps.recommended_max_memory() / 2**20
    return host, None


def _anonymous_rss_mib() -> float:
    """This process's private resident memory (``RssAnon``), in MiB; its whole RSS where that is unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return current_rss_mib()


class _Sampler(threading.Thread):
    """Samples RSS every 10 ms; ``mark()`` starts a new phase; ``peaks`` holds each phase's maximum."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks, self.done = [current_rss_mib()], threading.Event()

    def mark(self) -> None:
        self.peaks.append(current_rss_mib())

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peaks[-1] = max(self.peaks[-1], current_rss_mib())


def _measure(
    pipeline, size: int, frames: int, steps: int, guidance: float, cache_pose_features: bool = False
) -> tuple[float, float, float]:
    """One pipeline call at ``size``²: (extra MiB while denoising, extra MiB while decoding, seconds of the
    fastest denoising step after the first). Extra = above what was held before the call (host, or CUDA)."""
    cuda = pipeline.vae.device.type == "cuda"
    image = PIL.Image.new("RGB", (size, size), (128, 110, 100))
    poses = np.zeros((frames, size, size, 3), np.uint8)
    poses[:, size // 3 : size // 2, size // 3 : 2 * size // 3] = 255  # something for the guider to see
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    release_freed_memory()  # kept blocks would be reused unseen: the RSS increase below is this call's own
    sampler = _Sampler()
    sampler.start()
    base, started, first, denoise_peak = sampler.peaks[0], time.perf_counter(), [], [0.0]

    def on_frame(index: int, frame: np.ndarray) -> None:
        if not first:
            first.append(time.perf_counter())
            sampler.mark()
            if cuda:
                denoise_peak[0] = torch.cuda.max_memory_allocated() - before
                torch.cuda.reset_peak_memory_stats()

    step_ends, scheduler_step = [], pipeline.scheduler.step

    def timed_step(*args, **kwargs):
        out = scheduler_step(*args, **kwargs)
        step_ends.append(time.perf_counter())
        return out

    pipeline.scheduler.step = timed_step
    try:
        pipeline(
            image, poses, poses[0], width=size, height=size, num_inference_steps=steps,
            guidance_scale=guidance, generator=torch.manual_seed(0), context_frames=frames,
            context_overlap=0, on_frame=on_frame, cache_pose_features=cache_pose_features,
        )  # fmt: skip
    finally:
        del pipeline.scheduler.step  # the instance attribute goes; the class's method is back
        sampler.done.set()
        sampler.join()
    durations = np.diff([started, *step_ends])
    last_step = float(durations[1:].min() if len(durations) > 1 else durations[0])  # the first warms up
    if cuda:
        decode_peak = torch.cuda.max_memory_allocated() - before
        return denoise_peak[0] / 2**20, decode_peak / 2**20, last_step
    denoise, decode = (peak - base for peak in sampler.peaks[:2])
    return denoise, decode, last_step


def calibrate(
    pipeline, window_frames: int = 16, guidance_scale: float = 3.5, cache_pose_features=False
) -> Calibration:
    """Measure ``pipeline`` (loaded, on its device and dtype) at :data:`CALIBRATION_SIZES` (module docstring).

    A warm-up call first (memory-mapped weights are read into memory on first use, and first calls allocate
    caches), then one call per size: :data:`CALIBRATION_FRAMES` frames, three denoising steps, the faster of
    the last two timed (a first step at new shapes pays for their set-up).
    """
    branches = 2 if guidance_scale > 1 else 1
    device = pipeline.vae.device
    frames = min(window_frames, CALIBRATION_FRAMES)
    _measure(pipeline, CALIBRATION_SIZES[0], 2, 1, guidance_scale, cache_pose_features)  # warm-up
    loaded_device = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
    loaded_host = current_rss_mib()
    points = []
    for size in CALIBRATION_SIZES:
        denoise, decode, step = _measure(pipeline, size, frames, 3, guidance_scale, cache_pose_features)
        points.append(((size // 8) ** 2, denoise, decode, step / (frames * branches)))  # per frame pass
    (t0, d0, v0, s0), (t1, d1, v1, s1) = points
    window = frames * branches
    return Calibration(
        device=str(device), dtype=str(pipeline.vae.dtype).removeprefix("torch."), window_frames=frames,
        branches=branches, loaded_host_mib=loaded_host, loaded_device_mib=loaded_device,
        denoise_mib=PhaseFit.through(t0 * window, d0, t1 * window, d1),
        decode_mib=PhaseFit.through(t0 * 64, v0, t1 * 64, v1),
        seconds_per_pass=PhaseFit.through(t0, s0, t1, s1),
    )  # fmt: skip


def estimate(
    calibration: Calibration,
    config: GenerateConfig,
    frames: int,
    available: tuple[float, float | None] | None = None,
    weights_scale: float = 1.0,
) -> Plan:
    """The plan for ``frames`` frames at ``config``'s size, steps, guidance, windows and keyframes.

    Args:
        available: (host MiB, device MiB or None) the run may use; default :func:`machine_memory`.
        weights_scale: the weights' memory relative to the calibration's (0.5 for bf16 estimated from fp32).
    """
    available = available or machine_memory(calibration.device)
    branches = 2 if config.guidance_scale > 1 else 1
    diffused = len(range(0, frames, config.keyframe_step)) if frames else 0
    window = min(config.context_frames, max(diffused, 1))
    tokens = (config.height // 8) * (config.width // 8)
    # activations shrink with the dtype as the weights do
    denoise = calibration.denoise_mib(tokens * window * branches) * weights_scale
    decode = calibration.decode_mib(config.height * config.width) * weights_scale
    windows = context_windows(
        max(diffused, 1), config.context_frames, config.context_overlap, config.wrap_around
    )
    passes = sum(len(w) for w in windows) * branches
    per_step = calibration.seconds_per_pass(tokens) * passes
    on_gpu = calibration.device.startswith(("cuda", "mps"))
    if on_gpu:
        host = calibration.loaded_host_mib
        device_peak = calibration.loaded_device_mib * weights_scale + max(denoise, decode)
    else:
        overhead = 600.0  # the interpreter, torch, diffusers, MediaPipe: measured once, scaled with nothing
        weights = max(calibration.loaded_host_mib - overhead, 0.0) * weights_scale
        host, device_peak = overhead + weights + max(denoise, decode), None
    dtype = calibration.dtype
    if weights_scale != 1.0:
        dtype = {"float32": "bfloat16" if not on_gpu else "float16"}.get(dtype, dtype)
    return Plan(
        config, frames, calibration.device, dtype, host, device_peak, per_step, per_step * config.steps,
        available[0], available[1],
    )  # fmt: skip


def fitting_settings(
    calibration: Calibration, config: GenerateConfig, frames: int, available=None
) -> Plan | None:
    """The nearest settings that fit, trying in order: half precision, smaller frames (down to 256 px),
    8-frame windows; ``None`` when none does."""
    half = [0.5] if calibration.dtype == "float32" else []
    sizes = [s for s in (448, 384, 320, 256) if s < max(config.width, config.height)]
    candidates = [(scale, config) for scale in [1.0, *half]]
    for side in sizes:
        ratio = side / max(config.width, config.height)
        width, height = (int(side * ratio) // 8 * 8 for side in (config.width, config.height))
        smaller = replace(config, width=width, height=height)
        candidates += [(scale, smaller) for scale in [1.0, *half]]
    for scale, base in list(candidates):
        if base.context_frames > 8:
            shorter = replace(base, context_frames=8, context_overlap=min(base.context_overlap, 2))
            candidates.append((scale, shorter))
    for scale, candidate in candidates:
        plan = estimate(calibration, candidate, frames, available, scale)
        if plan.fits:
            return plan
    return None


def plan_run(pipeline, config: GenerateConfig, frames: int) -> tuple[Plan, Plan | None]:
    """Calibrate ``pipeline`` and plan ``frames`` frames at ``config``.

    Returns:
        (the plan, the nearest plan that fits when it does not fit, else None).
    """
    diffused = len(range(0, max(frames, 1), config.keyframe_step))
    window = min(config.context_frames, diffused)
    calibration = calibrate(pipeline, window, config.guidance_scale, config.cache_pose_features)
    plan = estimate(calibration, config, frames)
    return plan, (None if plan.fits else fitting_settings(calibration, config, frames))


def weights_mib(files: list[Path], dtype: torch.dtype) -> float:
    """Memory the weights in ``files`` (files or folders of float32 checkpoints) take in ``dtype``, in MiB."""
    total = 0
    for path in files:
        items = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in _WEIGHT_SUFFIXES]
        total += sum(p.stat().st_size for p in items)
    return total / 2**20 * torch.finfo(dtype).bits / 32
