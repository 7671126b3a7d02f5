"""Seconds and peak memory per stage of a generation run (for notebook 05's table and the CLI).

    meter = StageMeter()
    with meter.stage("audio2mesh"):
        ...
    meter.rows()   # [{"stage": "audio2mesh", "seconds": 0.41, "peak_rss_mib": 812.3, "rss_growth_mib": 3.1}]

Host memory is the process's resident set size (RSS: what the OS holds in RAM for it, torch's buffers
included, which Python's own ``tracemalloc`` does not see). A background thread samples it every
``interval_s`` while a stage runs, so ``peak_rss_mib`` is the highest sample; spikes shorter than the
interval can be missed. Where ``/proc/self/statm`` does not exist (macOS, Windows) the peak is the
process's lifetime maximum from ``resource.getrusage`` (an upper bound), or NaN. When torch has CUDA
initialised, ``peak_gpu_mib`` is the highest GPU memory torch's allocator held for tensors during the stage
(``torch.cuda.max_memory_allocated``; the driver's own and the cache's reserve come on top).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["StageMeter", "StageRecord", "current_rss_mib", "stage_key"]

_MIB = 1024 * 1024


def current_rss_mib() -> float:
    """Resident set size of this process now, in MiB (NaN where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _MIB
    except (OSError, ValueError, IndexError):
        return _lifetime_peak_mib()


def _lifetime_peak_mib() -> float:
    try:
        import resource  # Unix only
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _cuda():
    """torch.cuda when torch is loaded and has initialised CUDA, else None (never imports torch itself)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    return cuda if cuda is not None and cuda.is_available() and cuda.is_initialized() else None


def stage_key(name: str) -> str:
    """A stage name as a metric name: ``"VAE decode + mp4"`` → ``"vae_decode_mp4"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass
class StageRecord:
    """One measured stage."""

    stage: str
    seconds: float  # wall-clock time
    peak_rss_mib: float  # highest RSS sampled while the stage ran
    rss_growth_mib: float  # RSS at the end minus RSS at the start (memory the stage kept)
    peak_gpu_mib: float | None = None  # CUDA only: torch's peak allocated GPU memory during the stage


class _PeakSampler(threading.Thread):
    def __init__(self, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.interval_s, self.peak = interval_s, current_rss_mib()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval_s):
            self.peak = max(self.peak, current_rss_mib())


class StageMeter:
    """Measures named stages (see the module docstring); a stage name used twice accumulates.

    Use ``with meter.stage(name):`` around a block, or ``meter.start(name)`` … ``meter.stop()`` where a
    stage ends inside a callback (``start`` ends the running stage first). Stages do not nest.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.records: list[StageRecord] = []
        self._running: tuple[str, float, float, _PeakSampler] | None = None

    def start(self, name: str) -> None:
        """End the running stage (if any) and start measuring ``name``."""
        self.stop()
        sampler = _PeakSampler(self.interval_s)
        sampler.start()
        if (cuda := _cuda()) is not None:
            cuda.reset_peak_memory_stats()
        self._running = (name, time.perf_counter(), current_rss_mib(), sampler)

    def stop(self) -> None:
        """End the running stage (no-op when none runs)."""
        if self._running is None:
            return
        name, start, start_rss, sampler = self._running
        self._running = None
        seconds = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        end_rss = current_rss_mib()
        cuda = _cuda()
        gpu = cuda.max_memory_allocated() / _MIB if cuda is not None else None
        self._add(StageRecord(name, seconds, max(sampler.peak, end_rss), end_rss - start_rss, gpu))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Measure the ``with`` block as stage ``name``."""
        self.start(name)
        try:
            yield
        finally:
            self.stop()

    def _add(self, record: StageRecord) -> None:
        for i, old in enumerate(self.records):
            if old.stage == record.stage:
                self.records[i] = StageRecord(
                    old.stage,
                    old.seconds + record.seconds,
                    max(old.peak_rss_mib, record.peak_rss_mib),
                    old.rss_growth_mib + record.rss_growth_mib,
                    max((m for m in (old.peak_gpu_mib, record.peak_gpu_mib) if m is not None), default=None),
                )
                return
        self.records.append(record)

    def seconds(self) -> dict[str, float]:
        """Stage name → seconds, in the order the stages first ran."""
        return {r.stage: round(r.seconds, 3) for r in self.records}

    def rows(self) -> list[dict]:
        """One dict per stage (for ``pandas.DataFrame``); ``peak_gpu_mib`` only where it was measured."""
        return [
            {k: v for k, v in vars(r).items() if k != "peak_gpu_mib" or v is not None} for r in self.records
        ]

    def peak_memory(self) -> dict[str, dict[str, float]]:
        """Stage → ``{"host_mib": peak RSS, "gpu_mib": peak GPU memory (CUDA only)}`` (saved in out.json)."""
        out = {}
        for r in self.records:
            out[r.stage] = {"host_mib": round(r.peak_rss_mib, 1)}
            if r.peak_gpu_mib is not None:
                out[r.stage]["gpu_mib"] = round(r.peak_gpu_mib, 1)
        return out
