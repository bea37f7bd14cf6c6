"""The batch samplers every loader uses (``recipes.data.batching``), for any world size: disjoint training shares of
equal length, reshuffled each epoch from seed + epoch; evaluation covering every item exactly once in the
same number of batches on every rank; a position that survives a checkpoint."""

from __future__ import annotations

import pytest
import torch

from recipes.data.batching import ResumableLoader, ShardedBatchSampler, TensorBatchDataset, batch_loader
from recipes.data.recommendation.interactions import InteractionBatches
from recipes.data.recommendation.seen import SeenItems
from recipes.data.speech.batching import LengthBucketSampler
from recipes.modules.errors import RecipeError

SHAPES = [(103, 10, 2), (5, 1, 2), (500, 128, 2), (1300, 64, 3), (9, 4, 2), (97, 8, 4)]


def _samplers(size: int, batch: int, world: int, shuffle: bool, bucketed: bool = False) -> list[ShardedBatchSampler]:
    if bucketed:
        lengths = [(i * 7919) % 1000 + 1 for i in range(size)]
        return [LengthBucketSampler(lengths, batch, shuffle, seed=3, num_replicas=world, rank=r) for r in range(world)]
    return [ShardedBatchSampler(size, batch, shuffle, seed=3, num_replicas=world, rank=r) for r in range(world)]


@pytest.mark.parametrize("bucketed", [False, True], ids=["uniform", "length_buckets"])
@pytest.mark.parametrize("size,batch,world", SHAPES)
def test_evaluation_counts_every_item_once_in_equal_batch_counts(size, batch, world, bucketed):
    ranks = [list(s) for s in _samplers(size, batch, world, shuffle=False, bucketed=bucketed)]
    assert sorted(i for r in ranks for b in r for i in b) == list(range(size))  # nothing dropped, nothing repeated
    assert len({len(r) for r in ranks}) == 1  # DDP's collectives see the same number of steps on every rank
    assert all(b for r in ranks for b in r)  # no empty batch
    if world == 1:
        assert [len(b) for b in ranks[0]] == [min(batch, size - i) for i in range(0, size, batch)]


@pytest.mark.parametrize("bucketed", [False, True], ids=["uniform", "length_buckets"])
@pytest.mark.parametrize("size,batch,world", [s for s in SHAPES if s[0] // s[1] >= s[2]])
def test_training_shares_are_disjoint_equal_and_reshuffled(size, batch, world, bucketed):
    samplers = _samplers(size, batch, world, shuffle=True, bucketed=bucketed)
    epochs = []
    for epoch in (0, 1):
        for s in samplers:
            s.set_epoch(epoch)
        ranks = [list(s) for s in samplers]
        flat = [i for r in ranks for b in r for i in b]
        assert len(flat) == len(set(flat)) and len({len(r) for r in ranks}) == 1
        assert len(flat) >= size - world * batch  # at most the tail the world size does not divide is dropped
        epochs.append(ranks)
    assert epochs[0] != epochs[1]
    again = _samplers(size, batch, world, shuffle=True, bucketed=bucketed)
    for s in again:
        s.set_epoch(1)
    assert [list(s) for s in again] == epochs[1]  # from seed + epoch alone


def test_too_small_for_the_world_is_a_clear_error():
    with pytest.raises(RecipeError, match="fewer than the 3 processes"):
        len(ShardedBatchSampler(7, 4, shuffle=True, num_replicas=3, rank=0))
    with pytest.raises(RecipeError, match="cannot give each of 4 processes one"):
        ShardedBatchSampler(3, 4, shuffle=False, num_replicas=4, rank=0)


def test_loader_position_survives_a_checkpoint():
    data = TensorBatchDataset(torch.arange(100), torch.arange(100))
    full = batch_loader(data, 8, shuffle=True, seed=1)
    full.sampler.set_epoch(2)
    expected = [b[0].tolist() for b in full]
    first = batch_loader(data, 8, shuffle=True, seed=1)
    first.sampler.set_epoch(2)
    it = iter(first)
    taken = [next(it)[0].tolist() for _ in range(5)]
    state = first.state_dict()
    assert state == {"epoch": 2, "position": 5, "batches": len(expected)}
    resumed = batch_loader(data, 8, shuffle=True, seed=1)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # what Lightning calls before the resumed epoch: keeps the position
    assert taken + [b[0].tolist() for b in resumed] == expected
    assert len(list(resumed)) == len(expected)  # the skip applies once
    done = {"epoch": 2, "position": len(expected), "batches": len(expected)}
    resumed.load_state_dict(done)  # saved at the end of the epoch: the next epoch starts at its beginning
    assert resumed.sampler.epoch == 3 and resumed.sampler.skip == 0
    assert isinstance(resumed, ResumableLoader)


def test_negatives_follow_the_batch_not_the_call_order():
    seen = SeenItems(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 4, 50)  # nothing seen
    data = InteractionBatches(
        {"user": torch.tensor([0, 1, 2, 3] * 10), "item": torch.arange(40)}, negatives=3, seen=seen, seed=5
    )
    sampler_a = ShardedBatchSampler(40, 8, shuffle=True, seed=5)
    batches = list(sampler_a)
    forward = [data[b]["negatives"] for b in batches]
    backward = [data[b]["negatives"] for b in reversed(batches)][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))  # a resumed run draws the same negatives
    other_rank = [
        data[b]["negatives"] for b in ShardedBatchSampler(40, 8, shuffle=True, seed=5, num_replicas=2, rank=1)
    ]
    assert not torch.equal(other_rank[0], forward[1])  # each rank its own draws, even for the same position
