"""Batches of variable-length utterances: a length-bucketing batch sampler (padding is
``recipes.data.speech.files``' job, in the loader's workers).

Sorting a whole split by length would give the same batches every epoch; shuffling alone pads a
1-second prompt to the longest utterance of its batch. The sampler shuffles, sorts inside buckets of
``bucket_batches`` batches, cuts the buckets into batches and shuffles the batch order, seeded by
``seed`` and the epoch (Lightning calls ``set_epoch``); under DDP each rank takes its share of the
batches (``recipes.data.batching.ShardedBatchSampler``).
"""

from __future__ import annotations

from typing import Sequence

import torch

from recipes.data.batching import ShardedBatchSampler

__all__ = ["LengthBucketSampler", "padding_fraction"]


class LengthBucketSampler(ShardedBatchSampler):
    """Batches of indices of similar lengths for this rank (see the module docstring and ``recipes.data.batching``).

    Args:
        lengths: length of every item (estimated from durations: no file is decoded to batch it).
        batch_size: items per batch.
        shuffle: shuffle across batches (training); False gives length-sorted batches in a fixed order.
        seed: seed of the shuffling (plus the epoch).
        bucket_batches: batches per bucket; larger buckets pad less and shuffle less.
        num_replicas, rank: as ``ShardedBatchSampler`` (None reads the process group).
    """

    def __init__(
        self,
        lengths: Sequence[int],
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
        self.lengths, self.bucket_batches = [int(n) for n in lengths], bucket_batches

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
