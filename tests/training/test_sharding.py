"""The pieces of :mod:`aniportrait_lib.training.sharding` that run in one process: the weightless copy an
export is filled into, and optimizer states keyed by parameter name (what a sharded run saves) restored
into an ordinary optimizer. The sharded runs themselves are tested in test_train_command.py (two gloo
processes, FSDP2)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from aniportrait_lib.training.sharding import (
    _name_keyed,
    _parameter_names,
    full_optimizer_state,
    load_optimizer_state,
    meta_copy,
    shard_sum,
    whole_module,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model[0].requires_grad_(False)
    return model


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    torch.manual_seed(seed)
    optimizer.zero_grad()
    model(torch.randn(6, 4)).square().mean().backward()
    optimizer.step()


def test_meta_copy_has_the_structure_and_no_weights():
    model = _model()
    skeleton = meta_copy(model)
    assert all(t.is_meta for t in [*skeleton.parameters(), *skeleton.buffers()])
    assert {k: v.shape for k, v in skeleton.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    assert [p.requires_grad for p in skeleton.parameters()] == [p.requires_grad for p in model.parameters()]
    assert not any(p.is_meta for p in model.parameters())  # the original keeps its weights
    skeleton.load_state_dict(model.state_dict(), assign=True)  # what whole_module does with gathered ones
    x = torch.randn(3, 4)
    assert torch.equal(skeleton.eval()(x), model.eval()(x))
    assert whole_module(model, None) is model  # unsharded: the module itself, no copy


def test_name_keyed_optimizer_state_restores_an_ordinary_optimizer():
    model = _model()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=0.1)
    for seed in range(3):
        _step(model, optimizer, seed)
    saved_weights = {k: v.clone() for k, v in model.state_dict().items()}
    positions = copy.deepcopy(full_optimizer_state(model, optimizer))  # as read back from a file
    named = _name_keyed(positions, _parameter_names(model, optimizer))
    assert named["param_groups"][0]["params"] == ["1.weight", "1.bias", "2.weight", "2.bias"]
    # continue from the saved state twice: from the position-keyed and from the name-keyed form
    ends = []
    for state in (positions, named):
        model.load_state_dict(saved_weights)
        fresh = torch.optim.AdamW(trainable, lr=0.1)
        load_optimizer_state(model, fresh, copy.deepcopy(state))  # (a load keeps the tensors it is given)
        _step(model, fresh, 7)
        ends.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(ends[0][k], ends[1][k]) for k in ends[0])
    # and a fresh optimizer (moments lost) would not have ended there
    model.load_state_dict(saved_weights)
    _step(model, torch.optim.AdamW(trainable, lr=0.1), 7)
    assert not torch.equal(model.state_dict()["2.weight"], ends[0]["2.weight"])


def test_shard_sum_leaves_whole_tensors_alone():
    local = torch.tensor(3.0, dtype=torch.float64)
    assert shard_sum([torch.ones(2)], local) is local
