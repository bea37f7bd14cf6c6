"""Interactions as the models see them: user and item indices into sorted vocabularies of the data's own ids
(integers or strings), with ratings and timestamps when the data has them. Every source (MovieLens' files, a
user's table) produces one ``Interactions``; splits, loaders and models never see where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor

__all__ = ["IdVocab", "Interactions"]


class IdVocab:
    """The distinct ids of users (or items), sorted: index ``i`` is the ``i``-th smallest id.

    Integer ids sort as numbers, others as strings. ``self[i]`` is the id as Python value; ``lookup`` maps ids
    back to indices.
    """

    def __init__(self, values: pa.Array) -> None:
        self.values = values
        self._list: list[Any] | None = None

    @staticmethod
    def encode(column: pa.Array | pa.ChunkedArray) -> tuple[IdVocab, Tensor]:
        """(the vocabulary of ``column``, the index of each value): a hash encoding in pyarrow, then a sort of the
        distinct values only, so 25 million ids cost seconds."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_integer(column.type):
            column = column.cast(pa.int64())
        else:  # ids read as text: numbers unless one has a sign or a leading zero ("0528881469" is an ASIN)
            column = column.cast(pa.large_string())
            if pc.all(pc.match_substring_regex(column, r"^(0|[1-9][0-9]{0,17})$")).as_py():
                column = column.cast(pa.int64())
        encoded = pc.dictionary_encode(column)
        order = pc.array_sort_indices(encoded.dictionary).to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
        return IdVocab(encoded.dictionary.take(pa.array(order))), torch.from_numpy(codes)

    @staticmethod
    def of(ids: np.ndarray) -> IdVocab:
        """A vocabulary of already sorted, distinct integer ids."""
        return IdVocab(pa.array(np.asarray(ids, dtype=np.int64)))

    @property
    def is_integer(self) -> bool:
        return pa.types.is_integer(self.values.type)

    def __len__(self) -> int:
        return len(self.values)

    def as_list(self) -> list[Any]:
        """Every id, in index order (cached: predictions look ids up row by row)."""
        if self._list is None:
            self._list = self.values.to_pylist()
        return self._list

    def __getitem__(self, i: int) -> Any:
        return self.as_list()[i]

    def numpy(self) -> np.ndarray:
        return self.values.to_numpy(zero_copy_only=False)

    def lookup(self, ids: pa.Array) -> np.ndarray:
        """The index of each id, -1 where the vocabulary does not hold it (ids are cast to its type first)."""
        ids = ids.cast(self.values.type)
        found = pc.index_in(ids, value_set=self.values)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and self.values.equals(other.values)


@dataclass
class Interactions:
    """Every interaction of a source, encoded.

    Attributes:
        user: user index of each interaction (int64).
        item: item index of each interaction.
        rating: the rating of each (float32), or None for implicit feedback.
        timestamp: when each happened (int64, seconds), or None.
        user_ids: the users' own ids, by index.
        item_ids: the items' own ids, by index.
        source: where the interactions came from, for messages.
        features: side features by name (MovieLens: user age, gender, occupation; item year and genres).
        feature_sizes: the vocabulary size of each categorical side feature.
        texts: one text per item index (title, genres...) for text towers, or None.
        fixed_split: rows of a split the source defines itself (MovieLens' official folds): train and test.
    """

    user: Tensor
    item: Tensor
    rating: Tensor | None
    timestamp: Tensor | None
    user_ids: IdVocab
    item_ids: IdVocab
    source: str
    features: dict[str, Tensor] = field(default_factory=dict)
    feature_sizes: dict[str, int] = field(default_factory=dict)
    texts: list[str] | None = None
    fixed_split: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return len(self.user)
