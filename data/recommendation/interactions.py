"""Batches of user-item interactions as dicts of tensors, with per-row lookups and fresh negative samples.

Everything is gathered with one tensor index per batch (``recipes.data.batching``'s rule), including the
rows of the users' seen items and the rejection sampling of negatives, so a loader over millions of
interactions costs a few tensor ops a batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from recipes.data.batching import TensorBatchDataset
from recipes.data.recommendation.seen import SeenItems

__all__ = ["InteractionBatches", "sample_negatives"]


def sample_negatives(
    seen: SeenItems, users: Tensor, k: int, generator: torch.Generator | None = None, max_rounds: int = 1000
) -> Tensor:
    """``k`` items per user drawn uniformly from the items the user has not interacted with (not in ``seen``).

    Rejection sampling, vectorized: draw all, redraw only the collisions until none is left. Every user
    must have at least one unseen item (the caller checks; ``max_rounds`` stops a runaway loop).
    """
    num_items = seen.num_items
    neg = torch.randint(0, num_items, (users.shape[0], k), generator=generator)
    rows = users.unsqueeze(1).expand_as(neg)
    bad = seen.contains(rows, neg)
    for _ in range(max_rounds):
        n_bad = int(bad.sum())
        if n_bad == 0:
            return neg
        neg[bad] = torch.randint(0, num_items, (n_bad,), generator=generator)
        bad = seen.contains(rows, neg)
    raise RuntimeError("negative sampling did not converge: some user has (almost) no unseen item")


class InteractionBatches(TensorBatchDataset):
    """Named tensors sharing their first dimension, fetched a batch at a time as a dict.

    Args:
        tensors: name -> tensor, all with the same first dimension.
        lookups: name -> (table, key): each batch also gets ``table[batch[key]]`` (e.g. each user's row of a
            ``SeenItems``), so a table is stored once, not once per row.
        constants: name -> tensor added unchanged to every batch (e.g. the raw id of every item).
        negatives: number of negative items sampled afresh for every batch from the items that
            ``seen[user]`` marks False, under the key ``negatives``; 0 for none.
        seen: the interactions negatives avoid.
        seed: seed of the negative sampler. A batch from ``recipes.data.batching``'s sampler brings its own seed
            (from this seed, the epoch, the rank and the batch's position), so each epoch and each rank draws
            new negatives and a resumed run draws exactly the ones the interrupted run would have.
    """

    def __init__(
        self,
        tensors: dict[str, Tensor],
        lookups: dict[str, tuple[Tensor | SeenItems, str]] | None = None,
        constants: dict[str, Tensor] | None = None,
        negatives: int = 0,
        seen: SeenItems | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(*tensors.values())
        self.names = list(tensors)
        self.lookups, self.constants = lookups or {}, constants or {}
        if negatives and seen is None:
            raise ValueError("negative sampling needs the seen mask")
        self.negatives, self.seen = negatives, seen
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)  # for batches that carry no seed of their own

    def __getitem__(self, index: int | list[int]) -> dict[str, Tensor]:  # type: ignore[override]
        return self.__getitems__(index if isinstance(index, list) else [index])  # loaders take the batched path

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:  # type: ignore[override]
        batch = dict(zip(self.names, super().__getitems__(indices)))
        for name, (table, key) in self.lookups.items():
            batch[name] = table[batch[key]]
        batch.update(self.constants)
        if self.negatives:
            seed = getattr(indices, "seed", None)
            generator = self.generator if seed is None else torch.Generator().manual_seed(seed)
            batch["negatives"] = sample_negatives(self.seen, batch["user"], self.negatives, generator)
        return batch
