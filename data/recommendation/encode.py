"""MovieLens tables as model inputs: contiguous ids, categorical and dense side features, seeded splits,
and the (user, item) pairs a user asks ``predict`` to score.

Raw MovieLens ids are remapped to 0-based indices in sorted order; ``user_ids[index]`` and
``item_ids[index]`` give the raw ids back, so every output names users and items as MovieLens does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from recipes.data.recommendation.files import GENRES, MovieLensTables, Ratings
from recipes.data.sources import existing_path
from recipes.modules.errors import ConfigError

__all__ = [
    "Encoded",
    "encode",
    "item_texts",
    "split_random",
    "split_leave_last_out",
    "read_pairs",
    "AGE_EDGES",
    "YEAR_EDGES",
]

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
                raise ConfigError(
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
        raise ConfigError(
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


def split_random(n: int, seed: int, fractions: tuple[float, float] = (0.1, 0.1)) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded random (train, val, test) positions: 80/10/10 by default."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(fractions[0] * n), round(fractions[1] * n)
    return perm[n_val + n_test :].sort().values, perm[:n_val].sort().values, perm[n_val : n_val + n_test].sort().values


def split_leave_last_out(user: Tensor, timestamp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each user's latest interaction is test, the one before it validation, the rest train.

    Ties in time keep file order (a stable sort), so the split is the same on every run. Users with
    fewer than three interactions stay wholly in train.
    """
    n = user.shape[0]
    order = torch.from_numpy(np.lexsort((np.arange(n), timestamp.numpy(), user.numpy())))
    sorted_user = user[order]
    counts = torch.bincount(sorted_user)
    ends = torch.cumsum(counts, 0)[sorted_user]  # one past each row's last position within its user
    from_end = ends - torch.arange(n) - 1  # 0 for the latest interaction
    enough = counts[sorted_user] >= 3
    test, val = order[(from_end == 0) & enough], order[(from_end == 1) & enough]
    train = order[(from_end >= 2) | ~enough]
    return train.sort().values, val.sort().values, test.sort().values


def _report(kind: str, bad: list[tuple[int, str]], path: Path, fix: str) -> ConfigError:
    shown = "; ".join(f"line {n}: {why}" for n, why in bad[:5])
    more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
    return ConfigError(f"{path}: {len(bad)} {kind}: {shown}{more}", fix)


def read_pairs(path: str | Path, encoded: Encoded) -> tuple[Tensor, Tensor]:
    """(user, item) index tensors for the rows of a CSV of raw ``user,item`` ids (an optional header line).

    Nothing is dropped: malformed rows are reported first, by line, then ids MovieLens does not know.
    """
    path = existing_path(path, "data.predict_pairs", "file", "give a CSV with one user,item pair a line")
    with open(path, newline="") as fh:
        rows = [
            (n, r) for n, r in enumerate(csv.reader(fh), start=1) if any(c.strip() for c in r)
        ]  # blank lines are not rows
    if rows and not all(c.strip().lstrip("-").isdigit() for c in rows[0][1][:2]):
        rows = rows[1:]  # a header such as "user,item"
    malformed, pairs = [], []
    for n, r in rows:
        fields = [c.strip() for c in r]
        if len(fields) != 2 or not all(f.lstrip("-").isdigit() for f in fields):
            malformed.append((n, f"expected two integer ids user,item, got {','.join(r)!r}"))
        else:
            pairs.append((n, int(fields[0]), int(fields[1])))
    if malformed:
        raise _report("malformed rows", malformed, path, "write one user,item pair of MovieLens ids a line")
    if not pairs:
        raise ConfigError(f"{path} holds no user,item pairs", "write one user,item pair of MovieLens ids a line")
    lines, users, items = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    u_pos = np.clip(np.searchsorted(encoded.user_ids, users), 0, len(encoded.user_ids) - 1)
    i_pos = np.clip(np.searchsorted(encoded.item_ids, items), 0, len(encoded.item_ids) - 1)
    bad_u, bad_i = encoded.user_ids[u_pos] != users, encoded.item_ids[i_pos] != items
    unknown = [
        (int(n), " and ".join(w for w, b in ((f"unknown user {u}", bu), (f"unknown item {i}", bi)) if b))
        for n, u, i, bu, bi in zip(lines, users, items, bad_u, bad_i)
        if bu or bi
    ]
    if unknown:
        raise _report("rows with unknown ids", unknown, path, "use user and item ids that occur in the MovieLens data")
    return torch.from_numpy(u_pos), torch.from_numpy(i_pos)
