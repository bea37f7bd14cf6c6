"""Which items each user has interacted with, stored as sorted (user, item) keys rather than a users x items
mask: 25 million interactions take 200 MB where ML-25M's mask would take 9.6 GB.

Membership of any batch of pairs is one ``searchsorted``; the rows of a batch of users come back as a
(B, items) mask built for that batch alone (what full-ranking evaluation excludes), so memory follows the
batch, never users x items.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SeenItems"]


class SeenItems:
    """The set of (user, item) pairs of some interactions.

    Args:
        user: user index of each interaction.
        item: item index of each interaction.
        num_users: users in the vocabulary (rows of ``__getitem__``'s masks are users).
        num_items: items in the vocabulary (their width).
    """

    def __init__(self, user: Tensor, item: Tensor, num_users: int, num_items: int) -> None:
        self.num_users, self.num_items = num_users, num_items
        self.keys = torch.unique(user.long() * num_items + item.long())  # sorted, duplicates merged
        bounds = torch.arange(num_users + 1, dtype=torch.long) * num_items
        self.starts = torch.searchsorted(self.keys, bounds)  # user u's keys are keys[starts[u]:starts[u + 1]]

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_users, self.num_items

    def counts(self) -> Tensor:
        """Distinct items per user."""
        return self.starts[1:] - self.starts[:-1]

    def contains(self, user: Tensor, item: Tensor) -> Tensor:
        """Whether each (user, item) pair (broadcast) is in the set."""
        query = user.long() * self.num_items + item.long()
        if len(self.keys) == 0:
            return torch.zeros_like(query, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, query).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == query

    def __getitem__(self, users: Tensor) -> Tensor:
        """(len(users), num_items) bool: row b marks the items of ``users[b]``."""
        users = users.long()
        first, last = self.starts[users], self.starts[users + 1]
        lengths = last - first
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
        keys = self.keys[first[rows] + within]
        mask = torch.zeros(len(users), self.num_items, dtype=torch.bool)
        mask[rows, keys - users[rows] * self.num_items] = True
        return mask
