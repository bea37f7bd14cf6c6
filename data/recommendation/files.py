"""MovieLens 100K files in either layout, read into plain arrays with every bad line named.

Two layouts hold the same data:

* GroupLens (``ml-100k.zip`` extracted): ``u.data`` (tab-separated user, item, rating, timestamp),
  ``u.user`` (pipe-separated id|age|gender|occupation|zip), ``u.item`` (latin-1, pipe-separated
  id|title|release date|video date|url|19 genre flags) and the official folds ``u1.base/u1.test`` ... ``u5``.
* RecBole atomic files (shipped inside the RecBole 1.2.1 wheel): ``ml-100k.inter``, ``ml-100k.user`` and
  ``ml-100k.item``, tab-separated with a typed header such as ``user_id:token``.

Without a ``root`` the copy inside the installed ``recbole`` package is used; it is found with
``importlib.util.find_spec`` and never imported (its dependencies are not needed to read three text files).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recipes.modules.errors import DataError

__all__ = ["GENRES", "MovieLensTables", "Ratings", "read_movielens", "recbole_folder", "GET_DATA"]

GET_DATA = (
    "pip install --no-deps recbole==1.2.1 (it ships MovieLens 100K), or pass --data.root FOLDER pointing to an "
    "extracted ml-100k.zip (u.data, u.user, u.item) or to RecBole's atomic files (ml-100k.inter ...)"
)
# The 19 genre flags of u.item, in file order (RecBole's "class" column uses the same names).
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_YEAR = re.compile(r"(\d{4})\s*$")
_TITLE_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")  # u.item titles end in "(1995)"; RecBole's keep the year apart


@dataclass
class Ratings:
    """Rating events with raw MovieLens ids: parallel arrays of equal length."""

    user: np.ndarray  # int64 raw user ids
    item: np.ndarray  # int64 raw item ids
    rating: np.ndarray  # float32, 1-5
    timestamp: np.ndarray  # int64 seconds


@dataclass
class MovieLensTables:
    """Everything read from one folder: all ratings, user and item attributes, the official folds if present."""

    ratings: Ratings
    users: dict[int, tuple[int, str, str]]  # raw id -> (age, gender, occupation)
    items: dict[int, tuple[int | None, tuple[str, ...]]]  # raw id -> (release year or None, genres)
    folds: dict[int, tuple[Ratings, Ratings]] = field(default_factory=dict)  # k -> (u{k}.base, u{k}.test)
    folder: Path = Path(".")
    titles: dict[int, str] = field(
        default_factory=dict
    )  # raw id -> title without the year; empty if the files hold none


def recbole_folder() -> Path:
    """``recbole/dataset_example/ml-100k`` inside the installed wheel (not imported, only located)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise DataError(
            "MovieLens 100K not found: the recbole package is not installed and no --data.root was given", GET_DATA
        )
    return Path(os.path.dirname(spec.origin)) / "dataset_example" / "ml-100k"


def _lines(path: Path, encoding: str = "utf-8") -> list[str]:
    if not path.is_file():
        raise DataError(f"{path} is missing", GET_DATA)
    try:
        return path.read_text(encoding=encoding).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}", "replace it with an intact copy; " + GET_DATA) from None


def _bad(path: Path, lineno: int, line: str, why: str) -> DataError:
    return DataError(
        f"{path} line {lineno} is corrupt ({why}): {line[:80]!r}", "replace the file with an intact copy; " + GET_DATA
    )


def _parse_ratings(path: Path, lines: list[str], sep: str, first: int, cols: tuple[int, int, int, int]) -> Ratings:
    rows = []
    for lineno, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        try:
            u, i, r, t = (parts[c] for c in cols)
            rows.append((int(u), int(i), float(r), int(float(t))))
        except (ValueError, IndexError):
            raise _bad(path, lineno, line, "expected user, item, rating and timestamp") from None
        if not 0.5 <= rows[-1][2] <= 5.0:
            raise _bad(path, lineno, line, f"rating {r} is outside 1-5")
    if not rows:
        raise DataError(f"{path} holds no ratings", GET_DATA)
    arr = np.array(rows, dtype=np.float64)
    return Ratings(
        arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.float32), arr[:, 3].astype(np.int64)
    )


def _year(text: str) -> int | None:
    m = _YEAR.search(text.strip())
    return int(m.group(1)) if m else None  # "unknown", "V" and empty dates carry no year


def _read_grouplens(folder: Path) -> MovieLensTables:
    ratings = _parse_ratings(folder / "u.data", _lines(folder / "u.data"), "\t", 0, (0, 1, 2, 3))
    users: dict[int, tuple[int, str, str]] = {}
    path = folder / "u.user"
    for lineno, line in enumerate(_lines(path), start=1):
        if line.strip():
            parts = line.split("|")
            try:
                users[int(parts[0])] = (int(parts[1]), parts[2], parts[3])
            except (ValueError, IndexError):
                raise _bad(path, lineno, line, "expected id|age|gender|occupation|zip") from None
    items: dict[int, tuple[int | None, tuple[str, ...]]] = {}
    titles: dict[int, str] = {}
    path = folder / "u.item"
    for lineno, line in enumerate(_lines(path, encoding="latin-1"), start=1):  # titles hold latin-1 accents
        if line.strip():
            parts = line.split("|")
            flags = parts[5:]
            if len(flags) != len(GENRES) or any(f not in ("0", "1") for f in flags) or not parts[0].isdigit():
                raise _bad(path, lineno, line, f"expected id|title|date|video date|url and {len(GENRES)} genre flags")
            items[int(parts[0])] = (_year(parts[2]), tuple(g for g, f in zip(GENRES, flags) if f == "1"))
            titles[int(parts[0])] = _TITLE_YEAR.sub("", parts[1]).strip()
    folds = {}
    for k in range(1, 6):
        base, test = folder / f"u{k}.base", folder / f"u{k}.test"
        if base.is_file() and test.is_file():
            folds[k] = tuple(_parse_ratings(p, _lines(p), "\t", 0, (0, 1, 2, 3)) for p in (base, test))
    return MovieLensTables(ratings, users, items, folds, folder, titles)


def _atomic(path: Path, needed: tuple[str, ...]) -> tuple[list[str], dict[str, int]]:
    """Lines of a RecBole atomic file and the column of each needed field (header ``name:type``)."""
    lines = _lines(path)
    header = [h.split(":")[0] for h in lines[0].split("\t")] if lines else []
    missing = [n for n in needed if n not in header]
    if missing:
        raise DataError(
            f"{path} has no column {', '.join(missing)} in its header", "replace it with an intact copy; " + GET_DATA
        )
    return lines, {n: header.index(n) for n in needed}


def _read_atomic(folder: Path) -> MovieLensTables:
    path = folder / "ml-100k.inter"
    lines, col = _atomic(path, ("user_id", "item_id", "rating", "timestamp"))
    ratings = _parse_ratings(path, lines, "\t", 1, (col["user_id"], col["item_id"], col["rating"], col["timestamp"]))
    path = folder / "ml-100k.user"
    lines, col = _atomic(path, ("user_id", "age", "gender", "occupation"))
    users = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if line.strip():
            parts = line.split("\t")
            try:
                users[int(parts[col["user_id"]])] = (
                    int(parts[col["age"]]),
                    parts[col["gender"]],
                    parts[col["occupation"]],
                )
            except (ValueError, IndexError):
                raise _bad(path, lineno, line, "expected user_id, age, gender, occupation") from None
    path = folder / "ml-100k.item"
    lines, col = _atomic(path, ("item_id", "release_year", "class"))
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    title_col = header.index("movie_title") if "movie_title" in header else None
    items, titles = {}, {}
    for lineno, line in enumerate(lines[1:], start=2):
        if line.strip():
            parts = line.split("\t")
            try:
                genres = tuple(g for g in parts[col["class"]].split(" ") if g)
                items[int(parts[col["item_id"]])] = (_year(parts[col["release_year"]]), genres)
                if title_col is not None:  # optional: only the text tower needs titles
                    titles[int(parts[col["item_id"]])] = parts[title_col].strip()
            except (ValueError, IndexError):
                raise _bad(path, lineno, line, "expected item_id, title, release_year, class") from None
    return MovieLensTables(ratings, users, items, {}, folder, titles)


def read_movielens(root: str | os.PathLike | None = None) -> MovieLensTables:
    """Read MovieLens 100K from ``root`` (either layout) or, without one, from the RecBole wheel."""
    folder = Path(root).expanduser() if root else recbole_folder()
    if (folder / "u.data").is_file():
        return _read_grouplens(folder)
    if (folder / "ml-100k.inter").is_file():
        return _read_atomic(folder)
    raise DataError(f"no MovieLens 100K ratings in {folder} (neither u.data nor ml-100k.inter)", GET_DATA)
