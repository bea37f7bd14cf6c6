"""Top-K metrics for one held-out item per row, vectorized over a batch.

``target_rank`` counts the candidates that score at least as high as the held-out item (ties count
against it, so a model that scores every item the same gets HR@K = 0, never a lucky K/num_items),
leaving out the items ``exclude`` marks (e.g. the user's training items). From the 0-based rank ``r``:
HR@K = 1 if r < K, and NDCG@K = 1 / log2(r + 2) if r < K (the ideal DCG of one relevant item is 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["target_rank", "hit_rate", "ndcg"]


def target_rank(scores: Tensor, target: Tensor, exclude: Tensor | None = None) -> Tensor:
    """0-based rank of column ``target[b]`` among row ``b`` of ``scores`` (B, C), ``exclude`` (B, C) left out."""
    target = target.unsqueeze(1)
    ahead = scores >= scores.gather(1, target)
    ahead.scatter_(1, target, False)  # the item itself; it is never excluded either
    if exclude is not None:
        ahead &= ~exclude
    return ahead.sum(dim=1)


def hit_rate(rank: Tensor, k: int) -> Tensor:
    """Per-row HR@k: 1.0 where the held-out item is among the top ``k``."""
    return (rank < k).float()


def ndcg(rank: Tensor, k: int) -> Tensor:
    """Per-row NDCG@k for one relevant item: ``1 / log2(rank + 2)`` inside the top ``k``, else 0."""
    return torch.where(rank < k, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros((), device=rank.device))
