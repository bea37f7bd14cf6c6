"""What every recommendation network shares: scoring (user, item) pairs with broadcasting, scoring every
item for a batch of users, and the popularity baseline."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PairScorer", "Popularity"]


class PairScorer(nn.Module):
    """Base of the recommendation nets: ``forward(user, item)`` scores pairs of index tensors.

    ``user`` and ``item`` broadcast against each other, so ``(B,)`` with ``(B,)`` scores B pairs and
    ``(B, 1)`` with ``(B, K)`` scores K items per user. Subclasses implement ``score_pairs`` on flat
    index tensors and may override ``score_all`` with something faster than scoring every pair.
    """

    num_items: int
    # What the net reads from the data at set-up (``recipes.modules.recommendation.inputs.InteractionData``):
    # "side_features" -> load_side_features, "interactions" -> load_interactions, "item_texts" -> load_item_texts.
    reads: tuple[str, ...] = ()
    # Embedding modules looked up by user and by item index, for ``embedding_penalty``.
    user_tables: tuple[str, ...] = ()
    item_tables: tuple[str, ...] = ()
    max_pairs: int = 1 << 18  # pairs scored at once by score_all: bounds memory of pair-wise nets

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        raise NotImplementedError

    def embedding_penalty(self, user: Tensor, item: Tensor) -> Tensor:
        """Squared L2 norm of the embedding rows that ``user`` and ``item`` look up, averaged over the batch.

        This is the classic per-example matrix-factorization regularizer: a row is shrunk each time it is
        used, so frequent users and items are regularized in proportion to their data (weight decay
        shrinks every row the same whether it was seen or not). Lookups go through the modules, so
        sparse gradients stay sparse.
        """
        total = sum(self.get_submodule(n)(user).pow(2).sum() for n in self.user_tables)
        total = total + sum(self.get_submodule(n)(item).pow(2).sum() for n in self.item_tables)
        return total / user.shape[0]

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        user, item = torch.broadcast_tensors(user, item)
        return self.score_pairs(user.reshape(-1), item.reshape(-1)).view(user.shape)

    def score_all(self, user: Tensor) -> Tensor:
        """(B, num_items) scores of every item for each user, in chunks of users."""
        items = torch.arange(self.num_items, device=user.device)
        step = max(1, self.max_pairs // self.num_items)
        return torch.cat([self(u.unsqueeze(1), items.unsqueeze(0)) for u in user.split(step)])


class Popularity(PairScorer):
    """The popularity baseline: an item's score is how often it occurs in the training split.

    It has no trainable parameter; the counts arrive from the datamodule (``load_side_features``) and
    are saved with the model. Evaluate it with ``test`` (no ``fit`` needed).

    Args:
        num_users: unused (kept so every net is built the same way).
        num_items: number of items.
    """

    reads = ("side_features",)

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        self.num_items = num_items
        self.register_buffer("popularity", torch.zeros(num_items))

    def load_side_features(self, features: dict[str, Tensor]) -> None:
        self.popularity.copy_(features["item_popularity"])

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        return self.popularity[item]

    def score_all(self, user: Tensor) -> Tensor:
        return self.popularity.expand(user.shape[0], -1)
