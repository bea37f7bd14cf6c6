"""I-AutoRec (Sedhain et al., "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015), scoring pairs.

Each item is its vector of training ratings over all users (zero where unobserved); an autoencoder
``h = sigmoid(V r_i + mu)``, ``r_hat = W h + b`` reconstructs it. A pair (u, i) encodes item i's vector
once and decodes only user u's entry (row u of W), so a batch costs B x (num_users x hidden) rather than a
full reconstruction per pair, and a loss on the batch's pairs is the paper's loss on observed entries.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from recipes.modules.errors import ConfigError
from recipes.modules.recommendation.scoring import PairScorer

__all__ = ["AutoRec", "memory_budget"]


def memory_budget() -> int:
    """A quarter of the machine's physical memory, in bytes: room for a dense matrix beside everything else."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


class AutoRec(PairScorer):
    """Item-based AutoRec over the training rating matrix.

    The (items x users) training ratings and their observed mask are buffers sized at construction, filled
    by ``load_interactions`` from the datamodule's training split only: the input of an item is the same
    training vector in fit, validation, test and predict, so a held-out rating never reaches the encoder.
    Checkpoints carry the matrix, so a restored model predicts without the datamodule. Unobserved entries
    are 0 in ``ratings`` (ratings are 1-5, so 0 never means a rating); ``observed`` records which are real.

    Args:
        num_users: number of users (the input and output width).
        num_items: number of items.
        hidden: width of the sigmoid code.
        sparse: sparse gradients for the decoder tables (for SparseAdam / Adagrad).
    """

    reads = ("interactions",)

    def __init__(self, num_users: int, num_items: int, hidden: int = 500, sparse: bool = False) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        dense = num_items * num_users * 5  # float32 ratings + bool mask
        if dense > memory_budget():
            raise ConfigError(
                f"autorec holds the dense items x users rating matrix: {num_items:,} x {num_users:,} takes "
                f"{dense / 2**30:.1f} GiB, more than a quarter of this machine's memory",
                "use a net that scales with the interactions, not users x items: mf, neumf or text_tower "
                "(--model.net mf --model.net_kwargs '{dim: 64}')",
            )
        self.num_items = num_items
        self.user_tables = ("decoder",)  # embedding_l2 shrinks the decoder rows a batch uses
        self.register_buffer("ratings", torch.zeros(num_items, num_users))
        self.register_buffer("observed", torch.zeros(num_items, num_users, dtype=torch.bool))
        self.encoder = nn.Linear(num_users, hidden)  # V and mu
        self.decoder = nn.Embedding(num_users, hidden, sparse=sparse)  # row u of W: only the pair's user is decoded
        self.decoder_bias = nn.Embedding(num_users, 1, sparse=sparse)  # b_u
        bound = 1 / math.sqrt(hidden)  # nn.Linear's own init, rather than Embedding's N(0, 1)
        nn.init.uniform_(self.decoder.weight, -bound, bound)
        nn.init.zeros_(self.decoder_bias.weight)

    def no_weight_decay(self) -> set[str]:
        # b_u is a bias stored as an (U, 1) table: the paper's L2 covers W and V only
        return {"decoder_bias.weight"}

    def load_interactions(self, user: Tensor, item: Tensor, rating: Tensor) -> None:
        """Fill the matrix from training interactions (the caller passes the training split only)."""
        self.ratings.zero_()
        self.observed.zero_()
        self.ratings[item, user] = rating.to(self.ratings.dtype)
        self.observed[item, user] = True

    def encode(self, item: Tensor) -> Tensor:
        """(len(item), hidden) codes of the items' training vectors."""
        return torch.sigmoid(self.encoder(self.ratings[item]))

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        # A batch repeats items; each distinct item's vector is encoded once.
        items, where = item.unique(return_inverse=True)
        code = self.encode(items)[where]
        return (self.decoder(user) * code).sum(-1) + self.decoder_bias(user).squeeze(-1)

    def score_all(self, user: Tensor) -> Tensor:
        # every item's code once, then one (B, h) x (h, I) product
        code = self.encode(torch.arange(self.num_items, device=user.device))
        return self.decoder(user) @ code.T + self.decoder_bias(user)
