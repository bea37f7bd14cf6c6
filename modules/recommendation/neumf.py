"""NeuMF (He et al., 2017, "Neural Collaborative Filtering"): a GMF tower (element-wise product of
embeddings) and an MLP tower (concatenated embeddings through ReLU layers), joined by one linear layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recipes.modules.recommendation.scoring import PairScorer

__all__ = ["NeuMF"]


class NeuMF(PairScorer):
    """Neural matrix factorization: GMF + MLP towers with separate embeddings.

    Args:
        num_users: number of users.
        num_items: number of items.
        gmf_dim: embedding size of the GMF tower.
        mlp_dims: widths of the MLP tower; its input embeddings are ``mlp_dims[0] // 2`` each (the paper's rule).
        dropout: dropout after every MLP layer.
        init_std: std of the normal init of the embeddings (the paper uses 0.01).
        sparse: sparse embedding gradients (for SparseAdam / Adagrad).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        gmf_dim: int = 32,
        mlp_dims: tuple[int, ...] = (64, 32, 16),
        dropout: float = 0.0,
        init_std: float = 0.01,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        if not mlp_dims or mlp_dims[0] % 2:
            raise ValueError("mlp_dims must be non-empty and start with an even width")
        self.num_items = num_items
        self.user_tables, self.item_tables = ("gmf_user", "mlp_user"), ("gmf_item", "mlp_item")
        self.gmf_user = nn.Embedding(num_users, gmf_dim, sparse=sparse)
        self.gmf_item = nn.Embedding(num_items, gmf_dim, sparse=sparse)
        self.mlp_user = nn.Embedding(num_users, mlp_dims[0] // 2, sparse=sparse)
        self.mlp_item = nn.Embedding(num_items, mlp_dims[0] // 2, sparse=sparse)
        layers: list[nn.Module] = []
        for d_in, d_out in zip(mlp_dims[:-1], mlp_dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(gmf_dim + mlp_dims[-1], 1)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=init_std)

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        gmf = self.gmf_user(user) * self.gmf_item(item)
        mlp = self.mlp(torch.cat([self.mlp_user(user), self.mlp_item(item)], dim=-1))
        return self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)
