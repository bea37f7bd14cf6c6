"""MovieLens 100K as ``Interactions``: contiguous ids, categorical and dense side features, item texts and the
official folds.

Raw MovieLens ids are remapped to 0-based indices in sorted order; ``user_ids[index]`` and
``item_ids[index]`` give the raw ids back, so every output names users and items as MovieLens does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recipes.data.recommendation.events import IdVocab, Interactions
from recipes.data.recommendation.files import GENRES, MovieLensTables, Ratings, read_movielens
from recipes.modules.errors import DataError

__all__ = ["Encoded", "encode", "item_texts", "movielens_interactions", "AGE_EDGES", "YEAR_EDGES"]

# MovieLens 1M's age groups (under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+); index 0 is "unknown".
AGE_EDGES = (18, 25, 35, 45, 50, 56)
# Release years: decades up to 1990, then single years, where most of the catalogue sits; 0 is "unknown".
YEAR_EDGES = (1950, 1960, 1970, 1980, 1990, 1995, 1996, 1997, 1998)


@dataclass
class Encoded:
    """Ratings as index tensors plus the side features of every user and item.

    ``features`` holds ``user_age, user_gender, user_occupation`` (U,) and ``item_year`` (I,) as
    categorical indices, ``item_genres`` (I, G) multi-hot, ``user_dense`` (U, 1) and ``item_dense`` (I, 1)
    as standardized age and release year. ``feature_sizes`` gives each categorical vocabulary's size.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    features: dict[str, Tensor]
    feature_sizes: dict[str, int]

    def index(self, ratings: Ratings, where: str) -> tuple[Tensor, Tensor]:
        """Raw ids of ``ratings`` as (user, item) index tensors; ids outside the vocabulary are corrupt data."""
        out = []
        for raw, vocab, kind in ((ratings.user, self.user_ids, "user"), (ratings.item, self.item_ids, "item")):
            pos = np.clip(np.searchsorted(vocab, raw), 0, len(vocab) - 1)
            unknown = vocab[pos] != raw
            if unknown.any():
                raise DataError(
                    f"{where} names {kind} {raw[unknown][0]}, which u.data does not",
                    "replace the fold files with intact copies",
                )
            out.append(torch.from_numpy(pos.astype(np.int64)))
        return out[0], out[1]


def _standardized(x: np.ndarray, known: np.ndarray) -> Tensor:
    mean, std = x[known].mean(), x[known].std() + 1e-6
    return torch.from_numpy(np.where(known, (x - mean) / std, 0.0).astype(np.float32)).unsqueeze(1)  # unknown -> mean


def encode(tables: MovieLensTables) -> Encoded:
    """Vocabularies (every id in the ratings or the attribute files) and side features."""
    user_ids = np.union1d(tables.ratings.user, np.array(sorted(tables.users), dtype=np.int64))
    item_ids = np.union1d(tables.ratings.item, np.array(sorted(tables.items), dtype=np.int64))
    occupations = sorted({occ for _, _, occ in tables.users.values()})
    age = np.array([tables.users.get(int(u), (-1, "", ""))[0] for u in user_ids], dtype=np.float64)
    gender = [tables.users.get(int(u), (0, "", ""))[1] for u in user_ids]
    occ = [tables.users.get(int(u), (0, "", ""))[2] for u in user_ids]
    year = np.array([tables.items.get(int(i), (None, ()))[0] or -1 for i in item_ids], dtype=np.float64)
    genre_pos = {g.lower(): n for n, g in enumerate(GENRES)}
    genres = torch.zeros(len(item_ids), len(GENRES))
    for row, i in enumerate(item_ids):
        for g in tables.items.get(int(i), (None, ()))[1]:
            genres[row, genre_pos.get(g.lower(), 0)] = 1.0  # a genre outside the 19 counts as "unknown"
    features = {
        "user_age": torch.from_numpy(np.where(age >= 0, np.digitize(age, AGE_EDGES) + 1, 0).astype(np.int64)),
        "user_gender": torch.tensor([{"M": 1, "F": 2}.get(g, 0) for g in gender]),
        "user_occupation": torch.tensor([occupations.index(o) + 1 if o in occupations else 0 for o in occ]),
        "item_year": torch.from_numpy(np.where(year > 0, np.digitize(year, YEAR_EDGES) + 1, 0).astype(np.int64)),
        "item_genres": genres,
        "user_dense": _standardized(age, age >= 0),
        "item_dense": _standardized(year, year > 0),
    }
    sizes = {
        "age": len(AGE_EDGES) + 2,
        "gender": 3,
        "occupation": len(occupations) + 1,
        "year": len(YEAR_EDGES) + 2,
        "genre": len(GENRES),
    }
    return Encoded(user_ids, item_ids, features, sizes)


def item_texts(tables: MovieLensTables, item_ids: np.ndarray) -> list[str]:
    """One text per item index: ``"Toy Story (1995). Animation, Children's, Comedy"`` (title, year, genres).

    A year or genre the files lack is left out of the text; an item with no row in the item file reads
    ``"unknown"``, as u.item's own placeholder movie does.
    """
    if not tables.titles:
        raise DataError(
            f"the MovieLens files in {tables.folder} hold no movie titles, which item texts need",
            "use GroupLens u.item or a RecBole ml-100k.item with a movie_title column "
            "(the recbole wheel's copy has one)",
        )
    out = []
    for i in item_ids:
        year, genres = tables.items.get(int(i), (None, ()))
        text = tables.titles.get(int(i), "unknown") + (f" ({year})" if year else "")
        out.append(text + (". " + ", ".join(genres) if genres else ""))
    return out


def movielens_interactions(root: str | None, official_fold: int | None = None) -> Interactions:
    """MovieLens 100K from ``root`` (either layout) or the recbole wheel, as ``Interactions`` with its side
    features, item texts (when the files hold titles) and, for ``official_fold``, that fold's train and test."""
    tables = read_movielens(root)
    enc = encode(tables)
    texts = item_texts(tables, enc.item_ids) if tables.titles else None
    fixed = None
    if official_fold is None:
        user, item = enc.index(tables.ratings, "the ratings file")
        parts = [tables.ratings]
    else:
        if official_fold not in tables.folds:
            raise DataError(
                f"split official needs u{official_fold}.base and u{official_fold}.test in {tables.folder}",
                "pass --data.root to an extracted ml-100k.zip, or use split random / leave_last_out / temporal",
            )
        parts = list(tables.folds[official_fold])
        pairs = [enc.index(r, f"u{official_fold}.{k}") for r, k in zip(parts, ("base", "test"))]
        user, item = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
        n_base = len(parts[0].user)
        fixed = {"train": torch.arange(n_base), "test": torch.arange(n_base, len(user))}
    return Interactions(
        user=user,
        item=item,
        rating=torch.from_numpy(np.concatenate([r.rating for r in parts])),
        timestamp=torch.from_numpy(np.concatenate([r.timestamp for r in parts])),
        user_ids=IdVocab.of(enc.user_ids),
        item_ids=IdVocab.of(enc.item_ids),
        source=str(tables.folder),
        features=enc.features,
        feature_sizes=enc.feature_sizes,
        texts=texts,
        fixed_split=fixed,
    )
