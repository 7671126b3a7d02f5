"""Which samples each process trains on, and every random draw of a step, as functions of the step.

A training run of the kit may be one process (a notebook, a laptop) or N processes started by
``accelerate launch`` (one per GPU, or N CPU processes with gloo). Three rules make both the same run:

* **Positions.** A dataset of the kit is indexed by *position*: the p-th sample a run asks for
  (:class:`~aniportrait_lib.training.lmk2video_data.FramePairDataset` maps a position to a clip and frames,
  by a seeded permutation per epoch). Micro-batch ``m`` of optimizer step ``s`` covers the global positions
  ``[(s·A + m)·W·B, (s·A + m + 1)·W·B)`` (A accumulation steps, W processes, B samples per process), and
  rank ``r`` takes the r-th block of B of them (:func:`micro_batch_positions`). So the ranks see disjoint
  samples, W processes × B see exactly the samples 1 process × W·B sees, and at W = 1 the positions are
  the ones the kit has always used (``step·A·B + m·B + i``).
* **Draws.** The noise, the timesteps, the VAE's latent samples and the unconditional drop of a micro-batch
  come from a generator seeded with ``(seed, step, micro)`` (:func:`step_generator`), drawn for the whole
  global micro-batch (W·B rows) and sliced to the rank's block (:meth:`StepDraws.rows`). The drop is one
  draw per global micro-batch, as the official whole-batch drop. Nothing depends on the global RNG, so a
  resumed run continues the same stream without restoring random states, on any process.
* **Order of the loader.** :class:`PositionSampler` yields the positions of one rank from a start step, so a
  ``torch.utils.data.DataLoader`` with workers reads ahead the exact samples the steps will use.

What does *not* follow: BatchNorm statistics (the multi-scale pose guider) are computed per process, as in
the official DDP run; with W processes they see B samples each, not W·B.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import DistributedType
from torch.utils.data import Sampler

from aniportrait_lib.devices import resolve_placement

from .sharding import enable_fsdp_on_cpu_processes

__all__ = [
    "PositionSampler",
    "Shard",
    "StepDraws",
    "build_accelerator",
    "describe_layout",
    "micro_batch_positions",
    "step_generator",
]


def build_accelerator(
    cpu: bool,
    mixed_precision: str,
    log_with: str | None = None,
    project_dir: Path | None = None,
    shardable: bool = False,
) -> Accelerator:
    """The ``Accelerator`` of a kit trainer, the same for one process and for N (``accelerate launch``).

    * the device from :func:`aniportrait_lib.devices.resolve_placement` (CUDA, else MPS, else the CPU;
      ``ANIPORTRAIT_DEVICE=cpu`` or ``cpu=True`` force the CPU, where N processes talk over gloo);
    * fp16 needs CUDA: elsewhere it becomes float32, with a warning (bf16 stays: CPUs run it);
    * DDP tolerates parameters without a gradient in a step (a whole-batch unconditional drop skips the
      reference UNet; a step that masks nothing leaves wav2vec2's mask embedding out);
    * FSDP2 when the launcher asked for it, on GPUs and - which accelerate itself does not do - on CPU
      processes too (:func:`~.sharding.enable_fsdp_on_cpu_processes`), for trainers that gather their
      checkpoints (``shardable``: the Lmk2Video ones).

    Raises:
        ValueError: DeepSpeed, which the kit's trainers do not support, or FSDP for a trainer that is not
            ``shardable``.
    """
    device = resolve_placement("cpu" if cpu else None).device
    if mixed_precision == "fp16" and not device.startswith("cuda"):
        warnings.warn(f"fp16 mixed precision needs CUDA: training in float32 on {device}", stacklevel=3)
        mixed_precision = "no"
    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision=mixed_precision, log_with=log_with,
        project_dir=project_dir, kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )  # fmt: skip
    enable_fsdp_on_cpu_processes(accelerator)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise ValueError(
            "the kit's trainers do not run under DeepSpeed: launch with --multi_gpu (DDP) or with FSDP2 "
            "(aniportrait_lib/recipes/accelerate/fsdp_stage2.yaml)"
        )
    if accelerator.distributed_type == DistributedType.FSDP and not shardable:
        raise ValueError(
            "this trainer keeps its model whole on every process: launch it with --multi_gpu (DDP), not FSDP"
        )
    return accelerator


def describe_layout(accelerator: Accelerator) -> str:
    """How a run is spread, in words: "1 process", "DDP over N processes", "FSDP2 over N processes"."""
    count = accelerator.num_processes
    if count == 1:
        return "1 process"
    kind = {DistributedType.FSDP: "FSDP2 (networks sharded)"}.get(accelerator.distributed_type, "DDP")
    return f"{kind} over {count} processes ({accelerator.device.type})"


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: ``rank`` in ``[0, world)``."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"need 0 <= rank < world, got rank {self.rank} of {self.world}")

    @classmethod
    def of(cls, accelerator) -> Shard:
        """The shard of an ``accelerate.Accelerator``'s process."""
        return cls(accelerator.process_index, accelerator.num_processes)


def micro_batch_positions(step: int, micro: int, batch_size: int, accumulation: int, shard: Shard) -> range:
    """Global dataset positions of rank ``shard.rank``'s part of micro-batch ``micro`` of step ``step``."""
    first = ((step * accumulation + micro) * shard.world + shard.rank) * batch_size
    return range(first, first + batch_size)


class PositionSampler(Sampler[int]):
    """Positions of one rank for steps ``start_step .. max_steps − 1``, micro-batch after micro-batch.

    Give it to a ``DataLoader`` with ``batch_size`` = the per-process batch size (and ``shuffle=False``):
    each loader batch is then one micro-batch, in step order.
    """

    def __init__(self, start_step: int, max_steps: int, batch_size: int, accumulation: int, shard: Shard):
        self.start_step, self.max_steps = start_step, max_steps
        self.batch_size, self.accumulation, self.shard = batch_size, accumulation, shard

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.max_steps):
            for micro in range(self.accumulation):
                yield from micro_batch_positions(step, micro, self.batch_size, self.accumulation, self.shard)

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step) * self.accumulation * self.batch_size


def step_generator(seed: int, step: int, micro: int = 0) -> torch.Generator:
    """A CPU generator seeded from ``(seed, step, micro)`` (SHA-256, so neighbouring steps are unrelated)."""
    digest = hashlib.sha256(f"aniportrait/{seed}/{step}/{micro}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class StepDraws:
    """The random draws of one global micro-batch, in a fixed order, sliced to this rank's rows.

    Every call draws the rows of all ranks (``world × rows``) from the same generator and returns the
    rank's block, so the values a sample gets do not depend on how the batch is split across processes.
    """

    def __init__(self, seed: int, step: int, micro: int, shard: Shard):
        self.generator, self.shard = step_generator(seed, step, micro), shard

    def uniform(self) -> float:
        """One number in [0, 1), the same on every rank (e.g. the whole-batch unconditional drop)."""
        return float(torch.rand((), generator=self.generator))

    def _block(self, full: torch.Tensor, rows: int) -> torch.Tensor:
        start = self.shard.rank * rows
        return full[start : start + rows]

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal ``shape`` (first dimension = this rank's rows), float32 on the CPU."""
        rows = shape[0]
        return self._block(torch.randn((rows * self.shard.world, *shape[1:]), generator=self.generator), rows)

    def integers(self, high: int, rows: int) -> torch.Tensor:
        """``rows`` integers in ``[0, high)`` (int64, CPU)."""
        full = torch.randint(0, high, (rows * self.shard.world,), generator=self.generator)
        return self._block(full, rows)
