"""Which samples each process takes, and the draws of a step (aniportrait_lib.training.sampling)."""

from __future__ import annotations

import pytest
import torch

from aniportrait_lib.training.sampling import PositionSampler, Shard, StepDraws, micro_batch_positions


def test_one_process_keeps_the_kits_positions():
    for step, micro in [(0, 0), (3, 1), (7, 2)]:
        assert list(micro_batch_positions(step, micro, 4, 3, Shard())) == [
            (step * 3 + micro) * 4 + i for i in range(4)
        ]


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_what_one_process_with_the_whole_batch_sees(world):
    for step in range(5):
        for micro in range(2):
            whole = list(micro_batch_positions(step, micro, 2 * world, 2, Shard()))
            parts = [list(micro_batch_positions(step, micro, 2, 2, Shard(r, world))) for r in range(world)]
            assert sum(parts, []) == whole  # disjoint, and together the one-process batch, in order


def test_the_sampler_yields_one_ranks_positions_from_a_start_step():
    shard = Shard(1, 2)
    positions = list(PositionSampler(3, 5, 2, 1, shard))
    assert positions == [*micro_batch_positions(3, 0, 2, 1, shard), *micro_batch_positions(4, 0, 2, 1, shard)]
    assert len(PositionSampler(3, 5, 2, 1, shard)) == 4


def test_a_sample_gets_the_same_draws_however_the_batch_is_split():
    whole = StepDraws(7, 11, 0, Shard())
    halves = [StepDraws(7, 11, 0, Shard(r, 2)) for r in range(2)]
    drop = whole.uniform()
    assert all(h.uniform() == drop for h in halves)  # one drop for the whole global batch
    t = whole.integers(1000, 4)
    assert torch.equal(torch.cat([h.integers(1000, 2) for h in halves]), t)
    noise = whole.normal((4, 3, 2))
    assert torch.equal(torch.cat([h.normal((2, 3, 2)) for h in halves]), noise)
    assert not torch.equal(StepDraws(7, 12, 0, Shard()).normal((4, 3, 2)), noise)  # the step matters
    assert not torch.equal(StepDraws(7, 11, 1, Shard()).normal((4, 3, 2)), noise)  # and the micro-batch


def test_a_bad_shard_is_refused():
    with pytest.raises(ValueError, match="rank"):
        Shard(2, 2)
