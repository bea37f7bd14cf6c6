"""A DLRM-style scorer (Naumov et al., 2019) over MovieLens ids and side features.

Dense features (standardized user age and release year) go through a bottom MLP to one vector of size
``dim``; each sparse feature (user id, item id, gender, occupation, age group, release-year group, and
the genres, a multi-hot bag averaged by ``nn.EmbeddingBag``) is an embedding of size ``dim``. The pairwise
dot products of these vectors, with the dense vector itself, feed the top MLP, which outputs the score.

The feature tables are buffers (saved with the weights), filled from the datamodule by
``load_side_features``; their shapes come from ``num_users``, ``num_items`` and ``feature_sizes``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recipes.modules.recommendation.scoring import PairScorer

__all__ = ["DLRM"]

_USER_CATEGORIES = ("gender", "occupation", "age")


def _mlp(widths: list[int], last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if last_relu or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(PairScorer):
    """Embedding tables + bottom MLP + pairwise dot-product interactions + top MLP.

    Args:
        num_users: number of users.
        num_items: number of items.
        feature_sizes: vocabulary size of each categorical feature: age, gender, occupation, year, genre.
        dim: embedding size, also the bottom MLP's output size.
        bottom_dims: hidden widths of the bottom MLP (dense features -> dim).
        top_dims: hidden widths of the top MLP (interactions -> score).
        init_std: std of the normal init of the embedding tables.
        sparse: sparse embedding gradients (for SparseAdam / Adagrad).
    """

    num_dense = 2  # user age, release year
    reads = ("side_features",)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        feature_sizes: dict[str, int],
        dim: int = 32,
        bottom_dims: tuple[int, ...] = (32,),
        top_dims: tuple[int, ...] = (64, 32),
        init_std: float = 0.01,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        missing = {"age", "gender", "occupation", "year", "genre"} - set(feature_sizes)
        if missing:
            raise ValueError(f"feature_sizes lacks {', '.join(sorted(missing))}")
        self.num_items = num_items
        self.user_tables, self.item_tables = ("tables.user",), ("tables.item",)
        self.tables = nn.ModuleDict(
            {
                "user": nn.Embedding(num_users, dim, sparse=sparse),
                "item": nn.Embedding(num_items, dim, sparse=sparse),
                **{k: nn.Embedding(feature_sizes[k], dim, sparse=sparse) for k in (*_USER_CATEGORIES, "year")},
            }
        )
        self.genres = nn.EmbeddingBag(feature_sizes["genre"], dim, mode="sum", sparse=sparse)
        self.bottom = _mlp([self.num_dense, *bottom_dims, dim], last_relu=True)
        n_vectors = len(self.tables) + 2  # the tables, the genre bag and the dense vector
        self.top = _mlp([dim + n_vectors * (n_vectors - 1) // 2, *top_dims, 1], last_relu=False)
        self.register_buffer("pairs", torch.triu_indices(n_vectors, n_vectors, offset=1), persistent=False)
        for emb in (*self.tables.values(), self.genres):
            nn.init.normal_(emb.weight, std=init_std)
        # Side-feature tables, zero until the datamodule fills them.
        self.register_buffer("user_categories", torch.zeros(num_users, len(_USER_CATEGORIES), dtype=torch.long))
        self.register_buffer("item_year", torch.zeros(num_items, dtype=torch.long))
        self.register_buffer("item_genres", torch.zeros(num_items, feature_sizes["genre"]))
        self.register_buffer("dense", torch.zeros(num_users + num_items, 1))

    def load_side_features(self, f: dict[str, Tensor]) -> None:
        self.user_categories.copy_(torch.stack([f["user_gender"], f["user_occupation"], f["user_age"]], dim=1))
        self.item_year.copy_(f["item_year"])
        counts = f["item_genres"].sum(1, keepdim=True).clamp(min=1)
        self.item_genres.copy_(f["item_genres"] / counts)  # a mean over the item's genres
        self.dense.copy_(torch.cat([f["user_dense"], f["item_dense"]]))

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        n_users = self.user_categories.shape[0]
        dense = torch.cat([self.dense[user], self.dense[n_users + item]], dim=1)
        cats = self.user_categories[user]
        genre_ids = torch.arange(self.item_genres.shape[1], device=item.device).expand(item.shape[0], -1)
        vectors = [
            self.bottom(dense),
            self.tables["user"](user),
            self.tables["item"](item),
            *(self.tables[k](cats[:, j]) for j, k in enumerate(_USER_CATEGORIES)),
            self.tables["year"](self.item_year[item]),
            self.genres(genre_ids, per_sample_weights=self.item_genres[item]),
        ]
        t = torch.stack(vectors, dim=1)  # (N, vectors, dim)
        dots = (t @ t.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        return self.top(torch.cat([vectors[0], dots], dim=1)).squeeze(-1)
