"""A user's interaction table: CSV, TSV, Parquet, MovieLens' ``::`` files (ML-1M/10M ``ratings.dat``) or RecBole
atomic files, with user, item and optional rating and timestamp columns.

Columns are found by their header (MovieLens' ``userId,movieId,rating,timestamp``, RecBole's
``user_id:token``, Amazon's ``reviewerID,asin,overall,unixReviewTime`` and the like), or named in
``data.columns``; a file without a header is read as user, item[, rating[, timestamp]] (ML-1M's order;
Amazon's rating-only files put the item first: ``data.columns: {item: f0, user: f1, rating: f2, timestamp: f3}``).
Ids may be of any type; ratings keep the data's own scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch

from recipes.data.recommendation.events import IdVocab, Interactions
from recipes.data.tables import first_null, line_of, plain_name, read_table
from recipes.modules.errors import ConfigError, DataError

__all__ = ["ROLES", "SYNONYMS", "read_interactions", "read_item_texts", "read_pairs"]

ROLES = ("user", "item", "rating", "timestamp")
# Header names (lowercased, without ``_`` or ``-``) that mean each role, by the data sets that use them.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "reviewerid", "customerid", "visitorid", "memberid", "users"),
    "item": ("item", "itemid", "iid", "movieid", "asin", "productid", "parentasin", "trackid", "bookid", "items"),
    "rating": ("rating", "overall", "score", "stars", "starrating", "rate", "ratings"),
    "timestamp": ("timestamp", "time", "unixreviewtime", "ts", "datetime", "date", "eventtime"),
}
COLUMNS_FIX = (
    "name the columns: --data.columns '{user: <column>, item: <column>, rating: <column or null>, "
    "timestamp: <column or null>}'"
)


def resolve_columns(table: pa.Table, path: Path, columns: dict[str, str | None] | None) -> dict[str, str | None]:
    """Role -> column of ``table``: those ``columns`` names, the rest found by header or position."""
    given = dict(columns or {})
    unknown = sorted(set(given) - set(ROLES))
    if unknown:
        raise ConfigError(f"data.columns has no role {unknown[0]}", f"its roles are {', '.join(ROLES)}")
    names = table.column_names
    headless = all(re.fullmatch(r"f\d+", n) for n in names)
    out: dict[str, str | None] = {}
    for position, role in enumerate(ROLES):
        if role in given:
            name = given[role]
            if name is not None and name not in names:
                raise DataError(
                    f"{path} has no column {name!r} for data.columns.{role} (its columns: {names})", COLUMNS_FIX
                )
            out[role] = name
        elif headless:
            out[role] = names[position] if position < len(names) else None
        else:
            out[role] = next((n for n in names if plain_name(n) in SYNONYMS[role]), None)
    for role in ("user", "item"):
        if out[role] is None:
            raise DataError(f"{path} has no {role} column that its header names (its columns: {names})", COLUMNS_FIX)
    return out


def _timestamps(column: pa.ChunkedArray, path: Path) -> torch.Tensor:
    """Seconds as int64 from integer or float seconds, dates or date-times."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s")).cast(pa.int64())
    elif pa.types.is_floating(column.type):
        column = pc.floor(column).cast(pa.int64())
    elif not pa.types.is_integer(column.type):
        raise DataError(
            f"{path}: its timestamp column holds {column.type} values, not numbers or dates",
            "give seconds since 1970 or ISO dates, or set data.columns.timestamp: null",
        )
    return torch.from_numpy(column.cast(pa.int64()).to_numpy().copy())  # arrow's buffers are read-only


def read_interactions(path: Path, columns: dict[str, str | None] | None = None) -> Interactions:
    """Every row of ``path`` as an interaction (see the module docstring); a row with an empty user, item,
    rating or timestamp, or a rating that is not a number, is named by line."""
    known = {s for names in SYNONYMS.values() for s in names}
    given = {v for k, v in (columns or {}).items() if k in ("user", "item") and v}
    ids = set(SYNONYMS["user"]) | set(SYNONYMS["item"])

    def id_type(name: str) -> pa.DataType | None:  # ids as text: a number with a leading zero keeps it
        return pa.string() if name in given or plain_name(name) in ids or name in ("f0", "f1") else None

    table = read_table(path, known=known, column_types=id_type)
    roles = resolve_columns(table, path, columns)
    for role, name in roles.items():
        if name is not None:
            row = first_null(table, name)
            if row is not None:
                raise DataError(
                    f"{path} {line_of(table, row)}: no {role} (column {name})", "fill it in or remove the row"
                )
    user_ids, user = IdVocab.encode(table.column(roles["user"]))
    item_ids, item = IdVocab.encode(table.column(roles["item"]))
    rating = None
    if roles["rating"] is not None:
        col = table.column(roles["rating"])
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            number = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
            row = pc.index(pc.invert(pc.match_substring_regex(col.cast(pa.string()), number)), True).as_py()
            where = f"{line_of(table, row)}: rating {col[row].as_py()!r}" if row >= 0 else f"its {col.type} ratings"
            raise DataError(
                f"{path} {where} is not a number (column {roles['rating']})",
                "give numeric ratings, or set data.columns.rating: null for implicit feedback",
            )
        rating = torch.from_numpy(col.cast(pa.float32()).to_numpy().copy())  # arrow's buffers are read-only
        if not torch.isfinite(rating).all():
            row = int((~torch.isfinite(rating)).nonzero()[0])
            raise DataError(f"{path} {line_of(table, row)}: rating {rating[row].item()} is not finite", "fix that row")
    timestamp = None if roles["timestamp"] is None else _timestamps(table.column(roles["timestamp"]), path)
    return Interactions(user, item, rating, timestamp, user_ids, item_ids, str(path))


def read_item_texts(
    path: Path, items: IdVocab, id_column: str | None = None, text_columns: list[str] | None = None
) -> list[str]:
    """One text per item index from an item table: ``text_columns`` (default: every column but the id) joined
    with ``". "``; an item the table does not describe reads ``"unknown"`` (counted in the log by the caller).
    The id column is ``id_column``, or the one its header names as an item id, or the first."""
    table = read_table(path, known=set(SYNONYMS["item"]), column_types=lambda n: pa.string())
    names = table.column_names
    id_col = id_column or next((n for n in names if plain_name(n) in SYNONYMS["item"]), names[0])
    if id_col not in names:
        raise DataError(f"{path} has no item id column {id_col!r} (its columns: {names})", "fix data.item_id_column")
    texts_from = text_columns or [n for n in names if n != id_col]
    missing = [n for n in texts_from if n not in names]
    if missing or not texts_from:
        raise DataError(f"{path} has no text column {missing[0] if missing else ''}".strip(), f"its columns: {names}")
    where = items.lookup(table.column(id_col).combine_chunks())
    parts = [pc.fill_null(table.column(n).cast(pa.string()), "").to_pylist() for n in texts_from]
    out = ["unknown"] * len(items)
    for row, index in enumerate(where.tolist()):
        if index >= 0:
            out[index] = ". ".join(p[row] for p in parts if p[row]) or "unknown"
    return out


def read_pairs(path: Path, users: IdVocab, items: IdVocab) -> tuple[torch.Tensor, torch.Tensor]:
    """(user, item) index tensors for a table of the data's own ``user,item`` ids (a header is optional).

    Nothing is dropped: ids that are not of the data's id type, then ids the data does not hold, are reported
    with their lines.
    """
    table = read_table(path, known=set(SYNONYMS["user"]) | set(SYNONYMS["item"]), column_types=lambda n: pa.string())
    if table.num_columns != 2:
        raise DataError(
            f"{path} has {table.num_columns} columns ({', '.join(table.column_names)})",
            "write one user,item pair of the data's own ids a line",
        )
    bad: list[str] = []
    found = []
    for col, vocab, kind in ((table.column(0), users, "user"), (table.column(1), items, "item")):
        col = col.combine_chunks()
        if vocab.is_integer:
            numeric = pc.match_substring_regex(col, r"^\s*-?[0-9]+\s*$").to_numpy(zero_copy_only=False)
            rows = (~numeric).nonzero()[0].tolist()
            bad += [f"{line_of(table, r)}: {kind} {col[r].as_py()!r} is not an integer id" for r in rows]
            if rows:
                continue
            col = pc.utf8_trim_whitespace(col).cast(pa.int64())
        index = vocab.lookup(col)
        bad += [f"{line_of(table, r)}: unknown {kind} {col[r].as_py()}" for r in (index < 0).nonzero()[0].tolist()]
        found.append(index)
    if bad:
        shown = "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
        raise DataError(f"{path}: {len(bad)} bad rows: {shown}", "use user and item ids that occur in the data")
    return torch.from_numpy(found[0]), torch.from_numpy(found[1])
