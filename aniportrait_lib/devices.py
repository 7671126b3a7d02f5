"""Where the networks run and in which precision: chosen from the machine, once, for every entry point.

The command line (``--device``, ``--dtype``), the notebooks
(:func:`~aniportrait_lib.runner.notebook.start_notebook`) and the trainers all ask :func:`resolve_placement`.
With nothing asked, the machine decides:

==========================  ===========================================================================
device                      CUDA if torch sees a CUDA GPU, else Apple's MPS, else the CPU
dtype                       the profile's on a GPU (``gpu``: float16, as the official scripts, spec §3.5);
                            float32 on the CPU (fp16 arithmetic there is emulated and slow)
==========================  ===========================================================================

A profile names defaults, not the device: ``generate --weights official:…`` on a laptop runs on its CPU and
says so. Asking for a device the machine lacks (``--device cuda`` on a CPU-only torch) is an error naming what
torch sees. ``--dtype bf16`` works everywhere torch has bfloat16 kernels (CPUs included: about 2× less memory
than float32, slightly different pixels). The environment variables ``ANIPORTRAIT_DEVICE`` and
``ANIPORTRAIT_DTYPE`` give the defaults for code that takes no argument (e.g. the notebook suite).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from aniportrait_lib.config import DEVICE_CHOICES

__all__ = ["DTYPE_NAMES", "Placement", "available_device", "parse_dtype", "resolve_placement"]

DTYPE_NAMES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}  # fmt: skip
"""Accepted spellings of the three inference dtypes."""


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"fp32"`` / ``"float16"`` / ``"bf16"`` / a ``torch.dtype`` → the ``torch.dtype``.

    Raises:
        ValueError: any other name (the message lists the accepted ones).
    """
    if isinstance(name, torch.dtype):
        if name not in DTYPE_NAMES.values():
            raise ValueError(f"dtype {name}: the kit runs in float32, float16 or bfloat16")
        return name
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in DTYPE_NAMES:
        raise ValueError(f"dtype {name!r}: choose one of fp32, fp16, bf16")
    return DTYPE_NAMES[key]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_device() -> str:
    """The best device this machine offers torch: ``"cuda"``, ``"mps"`` or ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if _mps_available() else "cpu"


def _why_missing(device: str) -> str:
    if device == "cuda":
        build = torch.version.cuda
        return (
            "this torch is a CPU-only build (torch.version.cuda is None)"
            if build is None
            else f"torch (CUDA {build}) sees no CUDA device (driver, CUDA_VISIBLE_DEVICES?)"
        )
    return "torch.backends.mps.is_available() is False (Apple-silicon Macs only)"


@dataclass(frozen=True)
class Placement:
    """A resolved device and dtype, and why they were chosen."""

    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype  # float32, float16 or bfloat16
    reason: str  # one line for people: what was asked and what the machine has
    from_machine: bool = False  # True: no device was asked for (argument or environment), the machine chose

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def describe(self) -> str:
        """``"device: cpu, float32 (no CUDA or MPS on this machine)"``."""
        return f"device: {self.device}, {self.dtype_name} ({self.reason})"

    def to_dict(self) -> dict[str, str]:
        return {"device": self.device, "dtype": self.dtype_name, "reason": self.reason}


def resolve_placement(
    device: str | None = None, dtype: str | torch.dtype | None = None, profile_dtype: str | None = None
) -> Placement:
    """Device and dtype for a run: what was asked, else the environment variables, else the machine.

    Args:
        device: ``"auto"`` / ``None`` (the machine's best; ``ANIPORTRAIT_DEVICE`` if set), ``"cuda"``,
            ``"cuda:1"``, ``"mps"`` or ``"cpu"``.
        dtype: ``"auto"`` / ``None`` (``ANIPORTRAIT_DTYPE`` if set, else ``profile_dtype`` on a GPU and
            float32 on the CPU), ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        profile_dtype: the profile's GPU dtype (``Profile.dtype``), e.g. ``"float16"``.
    Raises:
        ValueError: an unknown name, or a device this machine does not have (the message says why).
    """
    asked = device if device not in (None, "auto") else os.environ.get("ANIPORTRAIT_DEVICE") or "auto"
    asked = str(asked).strip().lower()
    kind = asked.partition(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"device {asked!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if kind == "auto":
        chosen = available_device()
        reason = {"cuda": f"CUDA GPU {torch.cuda.get_device_name(0)}" if chosen == "cuda" else "",
                  "mps": "Apple MPS", "cpu": "no CUDA or MPS on this machine"}[chosen]  # fmt: skip
        reason = f"chosen from the machine: {reason}"
    else:
        if kind != "cpu" and not (torch.cuda.is_available() if kind == "cuda" else _mps_available()):
            raise ValueError(
                f"device {asked!r} asked for, but {_why_missing(kind)}: use --device cpu or auto"
            )
        if kind == "cuda" and ":" in asked and int(asked.partition(":")[2]) >= torch.cuda.device_count():
            raise ValueError(f"device {asked!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        chosen, reason = asked, "asked for"
    dtype_asked = dtype if dtype not in (None, "auto") else os.environ.get("ANIPORTRAIT_DTYPE") or "auto"
    if dtype_asked == "auto":
        on_gpu = chosen.startswith(("cuda", "mps"))
        resolved = parse_dtype(profile_dtype) if on_gpu and profile_dtype else torch.float32
    else:
        resolved = parse_dtype(dtype_asked)
        reason += f"; dtype {str(resolved).removeprefix('torch.')} asked for"
        if resolved == torch.float16 and chosen == "cpu":
            warnings.warn(
                "float16 on the CPU is emulated and slow; bf16 halves memory as well and runs faster there",
                stacklevel=2,
            )
    return Placement(chosen, resolved, reason, from_machine=kind == "auto")
