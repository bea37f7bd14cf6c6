"""Reading a user's table (CSV, TSV, Parquet, MovieLens ``::`` files, RecBole atomic files) with pyarrow, and
one error line that names the file and the line of the first row that cannot be read.

pyarrow parses in C++ with several threads (25 million rows in seconds) but reports a bad row without its
line; when it refuses a file, the file is scanned again in Python to find that line, which costs time only
on the way to an error.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recipes.modules.errors import DataError

__all__ = ["TABLE_SUFFIXES", "read_table", "require_columns", "first_null", "line_of", "delimiter_of", "plain_name"]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".inter", ".parquet")
_TYPED = re.compile(r"^(.*):(token|token_seq|float|float_seq)$")  # RecBole's header: user_id:token


def delimiter_of(path: Path, first_line: str) -> str:
    """``,`` for .csv, tab for .tsv and .inter, ``::`` for MovieLens .dat; otherwise the first of these the
    first line holds."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return ","
    if suffix in (".tsv", ".inter"):
        return "\t"
    if suffix == ".dat" or "::" in first_line:
        return "::"
    for sep in ("\t", ",", ";", "|"):
        if sep in first_line:
            return sep
    return ","


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _head(path: Path, lines: int = 20) -> list[str]:
    with open(path, "rb") as fh:
        return [fh.readline().decode("utf-8", errors="replace").rstrip("\r\n") for _ in range(lines)]


def _split(line: str, sep: str) -> list[str]:
    return line.split(sep) if len(sep) > 1 else next(csv.reader([line], delimiter=sep), [])


def plain_name(name: str) -> str:
    """A column name compared loosely: lowercase letters and digits only (``user_id`` = ``userId`` = ``userid``)."""
    return re.sub(r"[^0-9a-z]", "", _TYPED.sub(r"\1", name.strip().strip('"')).lower())


def _has_header(head: list[str], sep: str, known: Iterable[str]) -> bool:
    """Whether the first line names the columns: it holds a known column name, or a word where the rows below
    hold numbers (the test of ``csv.Sniffer.has_header``). A number on the first line is data (no column is
    named by a number); a table of words alone is taken to have a header, as pandas takes it."""
    first = [f.strip().strip('"') for f in _split(head[0], sep)]
    known = {plain_name(k) for k in known}
    if any(plain_name(f) in known for f in first):
        return True
    rows = [_split(line, sep) for line in head[1:] if line.strip()]
    for col, value in enumerate(first):
        below = [r[col].strip() for r in rows if len(r) > col]
        if below and not _is_number(value) and all(_is_number(v) for v in below):
            return True
    return not any(_is_number(f) for f in first)


def _locate(path: Path, sep: str, header: bool, names: list[str], reason: str) -> DataError:
    """The first line of ``path`` that pyarrow could not read, found by a Python scan."""
    bad_value = re.search(r"invalid value '([^']*)'", reason)
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for number, line in enumerate(fh, 1):
            if number == 1 and header or not line.strip():
                continue
            fields = _split(line.rstrip("\r\n"), sep)
            if len(fields) != len(names):
                return DataError(
                    f"{path} line {number}: expected {len(names)} fields ({', '.join(names)}), got {len(fields)}: "
                    f"{line.strip()[:80]!r}",
                    "fix or remove that line",
                )
            if bad_value and bad_value.group(1) in fields:
                column = names[fields.index(bad_value.group(1))]
                return DataError(
                    f"{path} line {number}: {bad_value.group(1)!r} in column {column} is not of that column's type "
                    f"(the rows before it hold numbers there)",
                    "fix or remove that line",
                )
    first = reason.splitlines()[0] if reason else "unreadable"
    return DataError(f"{path} cannot be read as a table ({first})", "check the file's format and delimiter")


def read_table(
    path: Path,
    header: bool | None = None,
    known: Iterable[str] = (),
    column_types: dict[str, pa.DataType] | Callable[[str], pa.DataType | None] | None = None,
) -> pa.Table:
    """The whole table in ``path``.

    Args:
        path: a .csv, .tsv, .dat (``::``), .inter (RecBole) or .parquet file; other text files by their first line.
        header: whether the first line names the columns; None guesses (``_has_header``, with ``known`` names).
        known: column names that mark a first line as a header (compared by ``plain_name``).
        column_types: pyarrow types of named columns (e.g. ids read as strings), or a function of the name giving
            a type or None; the rest are inferred.

    Column names lose RecBole's ``:type`` suffixes; a file without a header gets ``f0``, ``f1``, ...
    """
    if not path.is_file():
        raise DataError(f"{path} does not exist", "give the path of an existing table file")
    if path.suffix.lower() == ".parquet":
        try:
            table = pq.read_table(str(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"{path} is not a readable Parquet file ({exc})", "replace it with an intact copy"
            ) from None
        return table.rename_columns([_TYPED.sub(r"\1", n) for n in table.column_names])
    head = _head(path)
    first = head[0]
    if not first.strip():
        raise DataError(f"{path} is empty or starts with a blank line", "give a table with one row a line")
    sep = delimiter_of(path, first)
    fields = _split(first, sep)
    has_header = _has_header(head, sep, set(known)) if header is None else header
    names = (
        [_TYPED.sub(r"\1", f.strip().strip('"')) for f in fields]
        if has_header
        else [f"f{i}" for i in range(len(fields))]
    )
    if len(set(names)) != len(names):
        raise DataError(f"{path} line 1: repeated column names in {names}", "give every column its own name")
    source: str | io.BytesIO = str(path)
    delimiter = sep
    if len(sep) > 1:  # pyarrow splits on one character: MovieLens' ``::`` becomes a unit separator first
        source, delimiter = io.BytesIO(path.read_bytes().replace(sep.encode(), b"\x1f")), "\x1f"
    if callable(column_types):
        types = {n: t for n in names if (t := column_types(n)) is not None}
    else:
        types = {n: t for n, t in (column_types or {}).items() if n in names}
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if len(sep) == 1 else False),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise _locate(path, sep, has_header, names, str(exc)) from None
    if table.num_rows == 0:
        raise DataError(f"{path} holds no rows", "give a table with one row a line")
    return table.replace_schema_metadata({b"recipes.header": b"1" if has_header else b"0"})


def line_of(table: pa.Table, row: int) -> str:
    """Where row ``row`` (0-based) of a table read by ``read_table`` is: ``line N`` of a text file (the header
    counted; blank lines are assumed absent), or ``row N`` of a Parquet file."""
    meta = table.schema.metadata or {}
    if b"recipes.header" not in meta:
        return f"row {row + 1}"
    return f"line {row + 1 + int(meta[b'recipes.header'])}"


def require_columns(table: pa.Table, path: Path, names: Iterable[str], fix: str) -> None:
    """A DataError naming ``path`` and the first missing column, and the columns it has."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise DataError(f"{path} has no column {missing[0]} (its columns: {', '.join(table.column_names)})", fix)


def first_null(table: pa.Table, column: str) -> int | None:
    """The row of the first empty value in ``column`` (null, or an empty string), or None."""
    col = table.column(column)
    empty = pc.is_null(col)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(col), ""))
    row = pc.index(empty, True).as_py()
    return None if row < 0 else int(row)
