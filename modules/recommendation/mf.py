"""Biased matrix factorization (Koren et al., 2009): global bias + user bias + item bias + <p_u, q_i>."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recipes.modules.recommendation.scoring import PairScorer

__all__ = ["MatrixFactorization"]


class MatrixFactorization(PairScorer):
    """Biased matrix factorization.

    Args:
        num_users: number of users.
        num_items: number of items.
        dim: latent factors per user and item.
        init_std: std of the normal init of the factors; biases start at zero. Small, so that the first
            predictions are close to the global mean rather than random +-dim.
        sparse: sparse embedding gradients (for SparseAdam / Adagrad).
    """

    def __init__(
        self, num_users: int, num_items: int, dim: int = 64, init_std: float = 0.01, sparse: bool = False
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.user_tables, self.item_tables = (
            ("user",),
            ("item",),
        )  # biases stay unpenalized: they carry most of the signal
        self.user = nn.Embedding(num_users, dim, sparse=sparse)
        self.item = nn.Embedding(num_items, dim, sparse=sparse)
        self.user_bias = nn.Embedding(num_users, 1, sparse=sparse)
        self.item_bias = nn.Embedding(num_items, 1, sparse=sparse)
        self.bias = nn.Parameter(torch.zeros(()))
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        dot = (self.user(user) * self.item(item)).sum(-1)
        return self.bias + self.user_bias(user).squeeze(-1) + self.item_bias(item).squeeze(-1) + dot

    def score_all(self, user: Tensor) -> Tensor:
        # one (B, d) x (d, I) product instead of B * I gathered pairs
        return self.bias + self.user_bias(user) + self.item_bias.weight.T + self.user(user) @ self.item.weight.T
