"""Train/validation/test splits of interactions, as sorted row positions.

* random: a seeded share of all interactions for validation and for test;
* leave_last_out: each user's latest interaction is test, the one before validation (NCF's protocol);
* temporal: one global cut in time: the latest interactions are test, those before them validation, so no
  model is trained on what happened after the moment it is tested on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["split_random", "split_leave_last_out", "split_temporal"]


def split_random(n: int, seed: int, fractions: tuple[float, float] = (0.1, 0.1)) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded random (train, val, test) positions: 80/10/10 by default."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(fractions[0] * n), round(fractions[1] * n)
    return perm[n_val + n_test :].sort().values, perm[:n_val].sort().values, perm[n_val : n_val + n_test].sort().values


def split_leave_last_out(user: Tensor, timestamp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each user's latest interaction is test, the one before it validation, the rest train.

    Ties in time keep file order (a stable sort), so the split is the same on every run. Users with
    fewer than three interactions stay wholly in train.
    """
    n = user.shape[0]
    order = torch.from_numpy(np.lexsort((np.arange(n), timestamp.numpy(), user.numpy())))
    sorted_user = user[order]
    counts = torch.bincount(sorted_user)
    ends = torch.cumsum(counts, 0)[sorted_user]  # one past each row's last position within its user
    from_end = ends - torch.arange(n) - 1  # 0 for the latest interaction
    enough = counts[sorted_user] >= 3
    test, val = order[(from_end == 0) & enough], order[(from_end == 1) & enough]
    train = order[(from_end >= 2) | ~enough]
    return train.sort().values, val.sort().values, test.sort().values


def split_temporal(timestamp: Tensor, fractions: tuple[float, float] = (0.1, 0.1)) -> tuple[Tensor, Tensor, Tensor]:
    """The latest ``fractions[1]`` of the interactions are test, the ``fractions[0]`` before them validation
    (ties in time keep file order)."""
    n = timestamp.shape[0]
    order = torch.from_numpy(np.argsort(timestamp.numpy(), kind="stable"))
    n_val, n_test = round(fractions[0] * n), round(fractions[1] * n)
    train, val, test = order[: n - n_val - n_test], order[n - n_val - n_test : n - n_test], order[n - n_test :]
    return train.sort().values, val.sort().values, test.sort().values
