"""What a recommender reads from its data besides batches, declared: a DataModule that trains a ``Recommender``
implements ``InteractionData`` (``recipes.data.recommendation.datamodule.InteractionsDataModule`` does), and
each network declares which of these it reads (``PairScorer.reads``), so nothing is probed with ``hasattr``."""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from torch import Tensor

__all__ = ["InteractionData"]


@runtime_checkable
class InteractionData(Protocol):
    """The data side of a recommender."""

    task: str  # rating or ranking: which of the two task modules trains on it

    @property
    def user_ids(self) -> Sequence[Any]:
        """The users' own ids, by index (stored in checkpoints, checked when one is loaded)."""

    @property
    def item_ids(self) -> Sequence[Any]:
        """The items' own ids, by index."""

    def side_features(self) -> dict[str, Tensor]:
        """Side features by name, and ``item_popularity``: the training interactions of each item."""

    def item_train_counts(self) -> Tensor:
        """Training interactions per item index."""

    def item_texts(self) -> list[str]:
        """One text per item index (raises a DataError when the data has none)."""

    def train_interactions(self) -> dict[str, Tensor]:
        """``user, item, rating`` of the training split only."""
