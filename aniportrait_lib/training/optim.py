"""The optimisation pieces of the Lmk2Video recipe (spec §4): min-SNR weights, the learning-rate schedule,
AdamW (8-bit where bitsandbytes and CUDA are there), a float64 gradient clip, and torch's thread count.

Kept apart from the training loop (:mod:`.lmk2video`) so that each can be read, and tested, on its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributed.tensor import DTensor

from .lmk2video_config import Stage1TrainConfig
from .sharding import shard_sum

__all__ = ["build_optimizer", "clip_grad_norm_float64", "lr_factor", "min_snr_weights", "torch_threads"]


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def clip_grad_norm_float64(parameters, max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm``, computing the norm in float64; returns the norm.

    Why not ``torch.nn.utils.clip_grad_norm_``: at step 0 the multi-scale guider's zero-initialised
    ``final_proj`` feeds a constant map into BatchNorm (variance 0), and the backward pass multiplies by
    ``1/sqrt(eps)`` at each of its seven BatchNorms: gradients reach ~1e21 and their squared norm overflows
    float32. The float32 norm is then ``inf`` and every gradient is scaled to zero - the guider never
    leaves zero. In float64 the clip works as intended: the first step moves ``final_proj`` only.

    Under FSDP2 the gradients are shards (``DTensor``): each process takes the norm of its own shards and
    the squares are summed over the processes (:func:`~.sharding.shard_sum`), so every process clips by the
    same global norm. Collective then: every process must call it.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    # FSDP2 shards (DTensor): the norm of this process's shard, summed over the processes below
    local = [g.to_local() if isinstance(g, DTensor) else g for g in grads]
    # one foreach call per dtype group instead of a float64 copy, a norm and a multiply per tensor (~800
    # tensors in the small stage-1 networks: the per-tensor loop was ~30 % of a CPU training step)
    norms = []
    for group in _by_dtype(local).values():
        norms += torch._foreach_norm(group, 2, dtype=torch.float64)
    if any(isinstance(g, DTensor) for g in grads):
        squares = shard_sum(grads, torch.stack(norms).square().sum())
        total = squares.sqrt()
    else:  # the same value, computed as it always was (bitwise the same clip on one process and DDP)
        total = torch.linalg.vector_norm(torch.stack(norms))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if float(coef) < 1.0:  # a factor of exactly 1 leaves every gradient as it is
        for dtype, group in _by_dtype(local).items():
            torch._foreach_mul_(group, coef.to(dtype))
    return float(total)


def _by_dtype(tensors: list[torch.Tensor]) -> dict[torch.dtype, list[torch.Tensor]]:
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault(tensor.dtype, []).append(tensor)
    return groups


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Official min-SNR-γ weights for v-prediction: ``min(SNR+1, γ) / (SNR+1)`` per timestep → ``(B,)``."""
    alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
    snr = alphas / (1.0 - alphas) + 1.0  # "+1" because the target is the velocity
    return torch.clamp(snr, max=gamma) / snr


def lr_factor(step: int, config: Stage1TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step``: linear warm-up, constant (official), and - kit
    option - a linear decay to 0 over the last ``lr_decay_steps`` steps before ``max_steps``."""
    factor = min(1.0, (step + 1) / max(config.lr_warmup_steps, 1))
    if config.lr_decay_steps > 0:
        factor *= min(1.0, max(0.0, (config.max_steps - step) / config.lr_decay_steps))
    return factor


def build_optimizer(parameters, config: Stage1TrainConfig) -> torch.optim.Optimizer:
    kwargs = dict(lr=config.learning_rate, betas=config.adam_betas, weight_decay=config.adam_weight_decay,
                  eps=config.adam_epsilon)  # fmt: skip
    if config.use_8bit_adam and torch.cuda.is_available() and not config.cpu:
        try:
            import bitsandbytes as bnb  # optional (not a dependency): 8-bit Adam on CUDA only

            return bnb.optim.AdamW8bit(parameters, **kwargs)
        except ImportError:
            warnings.warn("bitsandbytes is not installed: using torch AdamW", stacklevel=3)
    # kit: on the CPU, torch's fused AdamW (the same update, one kernel over all tensors) instead of the
    # per-op "foreach" one: measured on the cpu profile's stage 1 (12 M parameters in 1,019 tensors, one
    # thread), 47 ms instead of 136 ms per step. Off elsewhere, so GPU runs keep the stock optimizer.
    return torch.optim.AdamW(parameters, **kwargs, fused=True if config.cpu else None)
