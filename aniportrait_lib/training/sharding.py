"""Training with the networks sharded across processes: PyTorch FSDP2, started through accelerate.

Under DDP (``accelerate launch --multi_gpu``) every process holds the whole networks. Under FSDP2
(``--use_fsdp --fsdp_version 2``, or ``recipes/accelerate/fsdp_stage2.yaml``) each process holds 1/N of
every weight, gradient and Adam moment - its parameters are ``DTensor`` shards - and gathers a block's
weights only while that block runs. Wherever a trainer reads or writes the *whole* model, it then needs a
collective step that every process takes part in:

* :func:`full_model_state` / :func:`full_optimizer_state`: the whole state dicts, gathered to the main
  process's CPU, for it to write a checkpoint or an export;
* :func:`load_model_state` / :func:`load_optimizer_state`: every process fills its shards from the whole
  state read from a checkpoint (optimizer states saved unsharded are renamed to parameter names first);
* the float64 gradient clip sums the squared norms of every process's shards
  (:func:`~.optim.clip_grad_norm_float64`);
* :func:`meta_copy` + :func:`whole_module`: a weightless copy of the networks made before sharding, filled
  with the gathered weights on the main process, so the kit's exporters get ordinary modules.

On one process or under DDP each of these is the plain ``state_dict`` / ``load_state_dict``.

:func:`enable_fsdp_on_cpu_processes`: accelerate 1.15 turns FSDP on only for GPU-like devices; when its
launcher asked for FSDP2 and the processes run on the CPU (no GPU, or ``ANIPORTRAIT_DEVICE=cpu``), the kit
turns it on itself, so the sharded path runs - and is tested - on a CPU machine with gloo.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from accelerate import Accelerator, FullyShardedDataParallelPlugin, PartialState
from accelerate.utils import DistributedType
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, Shard

__all__ = [
    "enable_fsdp_on_cpu_processes",
    "full_model_state",
    "full_optimizer_state",
    "is_sharded",
    "load_model_state",
    "load_optimizer_state",
    "meta_copy",
    "shard_sum",
    "whole_module",
]

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
"""Gather to whole tensors on the main process's CPU (the other processes get an empty dict)."""

_FROM_FULL = StateDictOptions(full_state_dict=True)
"""Every process passes the whole state; each keeps its shards."""


def enable_fsdp_on_cpu_processes(accelerator: Accelerator) -> bool:
    """Turn FSDP2 on for CPU processes (gloo) when accelerate's launcher asked for FSDP; True if it did.

    ``accelerate launch --use_fsdp`` (or a config file with ``distributed_type: FSDP``) on a machine without
    a GPU starts the processes as plain multi-CPU ones, and accelerate ignores the FSDP settings it was
    given. PyTorch's FSDP2 itself runs on the CPU, so the kit keeps accelerate's own FSDP path (its wrap
    policy, ``prepare``, ``get_state_dict``) and only sets the distributed type accelerate would have set.

    Raises:
        ValueError: the launch asked for FSDP version 1, which the kit does not run on the CPU.
    """
    asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not asked or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()  # reads the FSDP_* variables the launcher set
    if plugin.fsdp_version != 2:
        raise ValueError(
            "FSDP on CPU processes needs FSDP2: launch with --fsdp_version 2 (or fsdp_version: 2 in the "
            "accelerate config file)"
        )
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    accelerator.state.fsdp_plugin = plugin
    accelerator.state.distributed_type = DistributedType.FSDP
    # as accelerate does at the end of AcceleratorState's set-up: every later AcceleratorState() (prepare
    # makes some) copies the process state's entries over its own, distributed_type included
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


def is_sharded(module: nn.Module) -> bool:
    """Whether ``module``'s parameters are FSDP2 shards (``DTensor``)."""
    return any(isinstance(p, DTensor) for p in module.parameters())


def full_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s whole state dict. Sharded: collective (every process calls it), the main process gets
    the tensors on the CPU and the others an empty dict."""
    if not is_sharded(module):
        return module.state_dict()
    return get_model_state_dict(module, options=_FULL)


def full_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer``'s whole state. Unsharded: ``optimizer.state_dict()`` (states keyed by position).
    Sharded: collective, keyed by parameter name (torch's distributed-checkpoint form), main process only."""
    if not is_sharded(module):
        return optimizer.state_dict()
    return get_optimizer_state_dict(module, _torch_optimizer(optimizer), options=_FULL)


def load_model_state(module: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Fill ``module`` from a whole state dict (sharded: every process passes the same dict, collective)."""
    if is_sharded(module):
        set_model_state_dict(module, dict(state), options=_FROM_FULL)
    else:
        module.load_state_dict(state)


def load_optimizer_state(
    module: nn.Module, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]
) -> None:
    """Restore ``optimizer`` from :func:`full_optimizer_state`'s output of a sharded or an unsharded run.

    A sharded run's states are keyed by parameter name, an unsharded run's by position in the optimizer;
    either is renamed to the form the optimizer at hand needs: positions for an ordinary optimizer
    (``load_state_dict``), names for one of shards (torch's ``set_optimizer_state_dict``, collective).
    """
    named = _is_name_keyed(state)
    if not is_sharded(module):
        if named:
            state = _position_keyed(state, _parameter_names(module, _torch_optimizer(optimizer)))
        optimizer.load_state_dict(state)
        return
    optimizer = _torch_optimizer(optimizer)
    if not named:
        state = _name_keyed(state, _parameter_names(module, optimizer))
    set_optimizer_state_dict(module, optimizer, dict(state), options=_FROM_FULL)


def _torch_optimizer(optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` (torch's state-dict functions
    read its parameter groups and state directly)."""
    return getattr(optimizer, "optimizer", optimizer)


def _is_name_keyed(state: Mapping[str, Any]) -> bool:
    params = [p for group in state["param_groups"] for p in group["params"]]
    return bool(params) and all(isinstance(p, str) for p in params)


def _parameter_names(module: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The names of ``optimizer``'s parameters in its own order (the positions of its state dict)."""
    names = {id(p): name for name, p in module.named_parameters()}
    try:
        return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    except KeyError:
        raise ValueError("the optimizer holds parameters that are not the module's") from None


def _name_keyed(state: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """A position-keyed optimizer state dict with each position replaced by its parameter's name."""
    groups = [dict(group, params=[names[i] for i in group["params"]]) for group in state["param_groups"]]
    return {"state": {names[i]: value for i, value in state["state"].items()}, "param_groups": groups}


def _position_keyed(state: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """Inverse of :func:`_name_keyed`: each parameter name replaced by its position in ``names``."""
    position = {name: i for i, name in enumerate(names)}
    try:
        groups = [dict(g, params=[position[n] for n in g["params"]]) for g in state["param_groups"]]
    except KeyError as error:
        raise ValueError(f"the saved optimizer state names a parameter this one lacks: {error}") from None
    return {"state": {position[n]: value for n, value in state["state"].items()}, "param_groups": groups}


def shard_sum(tensors: list[torch.Tensor], local_sum: torch.Tensor) -> torch.Tensor:
    """``local_sum`` (a sum over this process's shards of ``tensors``) summed over the processes; unchanged
    when none of ``tensors`` is a ``DTensor``. Collective when they are.

    Raises:
        ValueError: ``tensors`` mix shards and whole tensors (the whole ones would be counted once per
            process), or a ``DTensor`` is not sharded along one one-dimensional mesh (e.g. HSDP's replicas,
            whose sum would count each shard several times).
    """
    sharded = [t for t in tensors if isinstance(t, DTensor)]
    if not sharded:
        return local_sum
    mesh = sharded[0].device_mesh
    one_mesh = all(t.device_mesh == mesh and isinstance(t.placements[0], Shard) for t in sharded)
    if len(sharded) != len(tensors) or mesh.ndim != 1 or not one_mesh:
        raise ValueError("a sum over shards needs every tensor sharded by FSDP2 over one 1-D process mesh")
    total = local_sum.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=mesh.get_group())
    return total


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are on the ``meta`` device (no memory): the same
    classes, configs and names, to be filled by :func:`whole_module`. Make it before sharding."""
    memo: dict[int, Any] = {}
    for parameter in module.parameters():
        memo[id(parameter)] = nn.Parameter(
            torch.empty_like(parameter, device="meta"), parameter.requires_grad
        )
    for buffer in module.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(module, memo)


def whole_module(module: nn.Module, skeleton: nn.Module | None) -> nn.Module | None:
    """``module`` with whole weights, for an exporter. Unsharded: ``module`` itself. Sharded (collective):
    on the main process ``skeleton`` (:func:`meta_copy`) filled with the gathered weights, elsewhere None."""
    if not is_sharded(module):
        return module
    if skeleton is None:
        raise ValueError("a sharded module needs the meta_copy made before sharding to be put back whole")
    state = full_model_state(module)
    if not state:  # not the main process
        return None
    skeleton.load_state_dict(state, assign=True)
    return skeleton
