"""Batches for one process of many: a sharded, resumable batch sampler and the loader around it.

Every loader of the recipes is a ``DataLoader`` whose sampler yields whole batches of indices
(``batch_size=None``), so a dataset gathers a batch with one tensor index (no per-sample collate) and
the sampler alone decides what each rank sees:

* training: the epoch's batches come from ``seed + epoch`` (the same on every rank), the tail that the
  world size does not divide is dropped, and rank ``r`` takes every ``world``-th batch from ``r``: the
  shares are disjoint and every rank runs the same number of steps, so DDP never waits on a rank
  that has run out;
* evaluation: nothing is dropped or repeated; rank ``r`` takes every ``world``-th item, cut into the
  same number of batches on every rank (one batch is halved where a rank's share ends on a batch
  boundary; batches may exceed ``batch_size`` only where a split barely covers the ranks), so metrics
  synced over ranks equal the one-process metrics.

The sampler is a ``DistributedSampler`` so Lightning leaves it in place instead of wrapping it (its
own wrapper pads evaluation splits with repeated samples). ``ResumableLoader`` gives Lightning the
``state_dict``/``load_state_dict`` it stores in checkpoints: the epoch and how many batches the
training loop has taken, so a run resumed from a mid-epoch checkpoint continues with the next batch.
Each batch carries a seed of its own (``IndexBatch.seed``, from seed, epoch, rank and position) for
datasets that draw random data per batch, such as negative samples or augmentations: what a batch holds is
a function of its seed, whichever worker process builds it and whether the run was resumed.

Datasets that decode files in worker processes (``num_workers``) return a ``LoadedBatch``: the batch of the
items that decoded and the (name, reason) of those that did not. The loader logs each bad item, counts them
per epoch (``bad_items``, logged by ``recipes.data_health``) and stops the run with one line once a split has
more than ``max_bad_fraction`` of its items bad, or a whole batch is.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Iterator, NamedTuple, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from recipes.modules.errors import ConfigError, DataError

__all__ = [
    "IndexBatch",
    "LoadedBatch",
    "ShardedBatchSampler",
    "ResumableLoader",
    "TensorBatchDataset",
    "batch_loader",
    "default_workers",
    "world",
]

log = logging.getLogger(__name__)


def world() -> tuple[int, int]:
    """(number of processes, this process's rank) of the default process group; (1, 0) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class IndexBatch(list):
    """The indices of one batch, with a seed for any randomness drawn for this batch alone."""

    seed: int = 0


class LoadedBatch(NamedTuple):
    """What a decoding dataset returns for a batch: the batch of the items that decoded, the (name, reason) of
    the items that did not, and how many were asked for. A named tuple, so pinned memory reaches the batch."""

    batch: Any
    bad: list[tuple[str, str]]
    asked: int


def default_workers() -> int:
    """Worker processes for loaders that decode files: one a core this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _cut(items: list[int], batch_size: int, count: int) -> list[list[int]]:
    """``items`` in order as exactly ``count`` batches: full batches of ``batch_size`` and the rest, then the
    largest batch halved or the last two merged until the count is right (at most once under DDP's shares)."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    while len(batches) < count:
        big = max(range(len(batches)), key=lambda i: len(batches[i]))
        half = -(-len(batches[big]) // 2)
        batches[big : big + 1] = [batches[big][:half], batches[big][half:]]
    while len(batches) > count:
        batches[-2:] = [batches[-2] + batches[-1]]
    return batches


class ShardedBatchSampler(DistributedSampler):
    """Batches of indices for this rank (see the module docstring).

    Args:
        size: number of items in the dataset.
        batch_size: items per batch (per rank).
        shuffle: shuffle every epoch (training); False gives every item once (evaluation).
        seed: seed of the shuffling; epoch ``e`` uses ``seed + e``.
        drop_last: drop the last batch of a shuffled epoch when it is not full.
        num_replicas: processes sharing the data; None reads the default process group.
        rank: this process's rank; None reads the default process group.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}", "fix data.batch_size")
        replicas, own = world()
        self.num_replicas = replicas if num_replicas is None else num_replicas
        self.rank = own if rank is None else rank
        if not shuffle and size < self.num_replicas:
            raise ConfigError(
                f"an evaluation split of {size} items cannot give each of {self.num_replicas} processes one",
                "use fewer devices or a larger split",
            )
        self.size, self.batch_size, self.shuffle, self.seed, self.drop_last = size, batch_size, shuffle, seed, drop_last
        self.epoch, self.skip = 0, 0
        self.dataset = range(size)  # DistributedSampler's attribute, for code that inspects it

    # --- what one process sees ----------------------------------------------------------------------
    def order(self) -> list[int]:
        """Evaluation order before sharding (subclasses sort, e.g. by length)."""
        return list(range(self.size))

    def epoch_batches(self, generator: torch.Generator) -> list[list[int]]:
        """All batches of a shuffled epoch, for every rank together (subclasses bucket, e.g. by length)."""
        perm = torch.randperm(self.size, generator=generator).tolist()
        return [perm[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)]

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, in order."""
        if not self.shuffle:
            mine = self.order()[self.rank :: self.num_replicas]
            largest = -(-self.size // self.num_replicas)
            count = min(-(-largest // self.batch_size), self.size // self.num_replicas)
            return _cut(mine, self.batch_size, count)
        batches = self.epoch_batches(torch.Generator().manual_seed(self.seed + self.epoch))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = [b for b in batches if len(b) == self.batch_size]
        if len(batches) < self.num_replicas:
            raise ConfigError(
                f"{self.size} training items make {len(batches)} batches, fewer than the {self.num_replicas} processes",
                "lower data.batch_size or use fewer devices",
            )
        batches = batches[: len(batches) - len(batches) % self.num_replicas]
        return batches[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return len(self.rank_batches())

    def __iter__(self) -> Iterator[IndexBatch]:
        batches, start = self.rank_batches(), self.skip
        self.skip = 0
        for position in range(start, len(batches)):
            batch = IndexBatch(batches[position])
            batch.seed = hash((self.seed, self.epoch, self.rank, position)) % 2**62  # ints hash to themselves: stable
            yield batch

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch

    # --- resuming -------------------------------------------------------------------------------------
    def resume_at(self, epoch: int, position: int) -> None:
        """Start the next iteration at batch ``position`` of ``epoch`` (a checkpoint's place)."""
        self.epoch, self.skip = epoch, position


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a ``ShardedBatchSampler`` that Lightning can checkpoint mid-epoch.

    ``state_dict`` records the epoch and how many of its batches this loader has handed out. Lightning's
    fetcher takes no batch ahead from a loader with a length, so that is the number of steps taken.

    Args:
        dataset: fetches a whole batch from an ``IndexBatch`` (and may return a ``LoadedBatch``).
        sampler: the batches of indices.
        collate_fn: applied to what the dataset returns (in the worker, with workers); None keeps it as is.
        num_workers: worker processes (kept alive across epochs); 0 loads in this process.
        pin_memory: page-locked batches, for faster copies to a CUDA device.
        split: the split's name in messages about bad items.
        max_bad_fraction: the share of the split's items that may fail to decode before the run stops.
    """

    def __init__(
        self,
        dataset: Dataset,
        sampler: ShardedBatchSampler,
        collate_fn: Any = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        split: str = "data",
        max_bad_fraction: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(
            sampler, ShardedBatchSampler
        ):  # e.g. Lightning's overfit_batches swaps in a SequentialSampler
            raise ConfigError(
                f"the recipes' loaders batch with their own sampler, got {type(sampler).__name__}",
                "leave trainer.overfit_batches at 0; use trainer.limit_train_batches with the same data for val",
            )
        for key in (
            "batch_size",
            "shuffle",
            "batch_sampler",
            "drop_last",
        ):  # what Lightning passes when it rebuilds a loader
            if kwargs.pop(key, None):
                raise ValueError(f"ResumableLoader takes no {key}: its sampler yields whole batches")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}", "fix data.num_workers")
        # A generator of its own: a DataLoader otherwise draws its workers' base seed from the global RNG each
        # time an iterator starts, so a run resumed mid-epoch would draw once more than the run it continues.
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
        if num_workers:
            kwargs.setdefault("persistent_workers", True)
        super().__init__(
            dataset,
            sampler=sampler,
            batch_size=None,
            collate_fn=collate_fn or _already_batched,
            num_workers=num_workers,
            pin_memory=pin_memory,
            **kwargs,
        )
        self.split, self.max_bad_fraction = split, max_bad_fraction
        self._taken = 0
        self.bad_items = 0  # this epoch's items that failed to decode (on this process)
        self.first_bad: tuple[str, str] | None = None

    def __iter__(self) -> Iterator[Any]:
        sampler: ShardedBatchSampler = self.sampler  # type: ignore[assignment]
        self._taken = sampler.skip
        if not sampler.skip:
            self.bad_items, self.first_bad = 0, None
        for batch in super().__iter__():
            self._taken += 1
            yield self._unpack(batch) if isinstance(batch, LoadedBatch) else batch

    def _unpack(self, loaded: LoadedBatch) -> Any:
        """The batch of a ``LoadedBatch``, after logging and counting its bad items (see the module docstring)."""
        for name, reason in loaded.bad:
            log.warning("skipped %s: %s", name, reason)
        if not loaded.bad:
            return loaded.batch
        self.bad_items += len(loaded.bad)
        self.first_bad = self.first_bad or loaded.bad[0]
        size = self.sampler.size  # type: ignore[attr-defined]
        allowed = math.floor(self.max_bad_fraction * size)
        name, reason = loaded.bad[0]
        if len(loaded.bad) == loaded.asked:
            raise DataError(
                f"none of the {loaded.asked} items of a {self.split} batch could be read, e.g. {name}: {reason}",
                "repair or remove those files (or their rows in the listing)",
            )
        if self.bad_items > allowed:
            raise DataError(
                f"{self.bad_items} {self.split} items could not be read, more than data.max_bad_fraction "
                f"{self.max_bad_fraction:g} of {size} allows ({allowed}); e.g. {name}: {reason}",
                "repair or remove those files (or their rows in the listing), or raise data.max_bad_fraction",
            )
        return loaded.batch

    def state_dict(self) -> dict[str, int]:
        sampler: ShardedBatchSampler = self.sampler  # type: ignore[assignment]
        return {"epoch": sampler.epoch, "position": self._taken, "batches": len(sampler)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: ShardedBatchSampler = self.sampler  # type: ignore[assignment]
        if state["position"] >= state["batches"]:  # saved at the end of an epoch: the next one starts afresh
            sampler.resume_at(state["epoch"] + 1, 0)
        else:
            sampler.resume_at(state["epoch"], state["position"])


class TensorBatchDataset(Dataset):
    """Tensors with a shared first dimension, indexable one sample at a time or a list at a time."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("tensors must be non-empty and share their first dimension")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: int | Sequence[int]) -> tuple[torch.Tensor, ...]:
        if isinstance(index, list):
            return self.__getitems__(index)
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return tuple(t[idx] for t in self.tensors)


def _already_batched(batch: Any) -> Any:
    return batch


def batch_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    **loader: Any,
) -> ResumableLoader:
    """A resumable, sharded loader that fetches each batch of ``dataset`` with one index; ``loader`` goes to
    ``ResumableLoader`` (workers, pinned memory, the split's name and bad-item budget)."""
    sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return ResumableLoader(dataset, sampler=sampler, **loader)
