"""Batches of variable-length utterances: a length-bucketing batch sampler and the padding collate.

Sorting a whole split by length would give the same batches every epoch; shuffling alone pads a
1-second prompt to the longest utterance of its batch. The sampler shuffles, sorts inside buckets of
``bucket_batches`` batches, cuts the buckets into batches and shuffles the batch order, seeded by
``seed`` and the epoch (Lightning calls ``set_epoch``); under DDP each rank takes its share of the
batches (``recipes.data.batching.ShardedBatchSampler``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from recipes.data.batching import ShardedBatchSampler

__all__ = ["UtteranceSet", "LengthBucketSampler", "collate_utterances", "padding_fraction"]


class UtteranceSet(Dataset):
    """Waveforms with encoded transcripts (empty ones when there are none); item ``i`` also carries ``i``."""

    def __init__(self, waves: list[Tensor], targets: list[list[int]] | None = None) -> None:
        self.waves = waves
        self.targets = targets if targets is not None else [[] for _ in waves]
        if len(self.targets) != len(waves):
            raise ValueError("one target per waveform")

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int | list[int]) -> tuple[Tensor, list[int], int] | list[tuple[Tensor, list[int], int]]:
        if isinstance(i, list):  # a whole batch from the batch sampler
            return [self[j] for j in i]
        return self.waves[i], self.targets[i], i

    @property
    def lengths(self) -> list[int]:
        return [len(w) for w in self.waves]


def collate_utterances(items: list[tuple[Tensor, list[int], int]]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(waves (B, N) zero-padded, wave lengths, targets (B, S) zero-padded, target lengths, indices)."""
    waves, targets, index = zip(*items)
    wave_lengths = torch.tensor([len(w) for w in waves])
    target_lengths = torch.tensor([len(t) for t in targets])
    padded = torch.zeros(len(waves), int(wave_lengths.max()))
    for row, w in zip(padded, waves):
        row[: len(w)] = w
    tgt = torch.zeros(len(targets), max(1, int(target_lengths.max())), dtype=torch.long)
    for row, t in zip(tgt, targets):
        row[: len(t)] = torch.tensor(t, dtype=torch.long)
    return padded, wave_lengths, tgt, target_lengths, torch.tensor(index)


class LengthBucketSampler(ShardedBatchSampler):
    """Batches of indices of similar lengths for this rank (see the module docstring and ``recipes.data.batching``).

    Args:
        lengths: length of every item.
        batch_size: items per batch.
        shuffle: shuffle across batches (training); False gives length-sorted batches in a fixed order.
        seed: seed of the shuffling (plus the epoch).
        bucket_batches: batches per bucket; larger buckets pad less and shuffle less.
        num_replicas, rank: as ``ShardedBatchSampler`` (None reads the process group).
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        bucket_batches: int = 8,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if bucket_batches < 1:
            raise ValueError("bucket_batches must be >= 1")
        super().__init__(len(lengths), batch_size, shuffle, seed, num_replicas=num_replicas, rank=rank)
        self.lengths, self.bucket_batches = list(lengths), bucket_batches

    def order(self) -> list[int]:
        return sorted(range(self.size), key=self.lengths.__getitem__)

    def epoch_batches(self, generator: torch.Generator) -> list[list[int]]:
        perm = torch.randperm(self.size, generator=generator).tolist()
        bucket = self.batch_size * self.bucket_batches
        batches = []
        for start in range(0, self.size, bucket):
            chunk = sorted(perm[start : start + bucket], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[b] for b in torch.randperm(len(batches), generator=generator).tolist()]


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of the padded samples that are padding, over ``batches``."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - sum(lengths[i] for b in batches for i in b) / padded
