"""A user's own corpus as a listing: a manifest (JSONL, or a CSV/TSV table) or a Hugging Face audiofolder.

* Manifest, JSONL: one ``{"audio": path, "text": transcript}`` object a line, optionally ``"duration"`` in
  seconds; NeMo's ``{"audio_filepath": ..., "text": ..., "duration": ...}`` is read as is.
* Manifest, ``.csv`` / ``.tsv``: the same names as columns (``audio`` or ``audio_filepath``, ``text``, optional
  ``duration``), with a header line.
* Audiofolder (``datasets``' ``audiofolder`` layout): ``<root>/metadata.csv`` with ``file_name`` and a transcript
  column (``transcription``, ``text`` or ``sentence``), optional ``duration``; audio paths relative to the root.

Relative paths are taken from the listing's folder, so a corpus folder can move as a whole. A row that cannot be
used fails with one DataError naming the file and its line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow as pa

from recipes.data.speech.utterances import Source, Utterances, utterances
from recipes.data.tables import read_table
from recipes.modules.errors import DataError

__all__ = ["AUDIO_KEYS", "TRANSCRIPT_COLUMNS", "read_audiofolder", "read_manifest"]

AUDIO_KEYS = ("audio", "audio_filepath")  # ours, NeMo's
TRANSCRIPT_COLUMNS = ("transcription", "text", "sentence")  # the audiofolder's, in the order they are looked for
JSONL_FIX = 'give one {"audio": path, "text": transcript} object a line (optionally "duration": seconds)'


def _absolute(path: str, base: Path) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else str(base / path)


def _duration(value: object, where: str) -> float:
    """A listed duration in seconds (NaN where absent); anything but a positive number is an error."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise DataError(f"{where}: duration {value!r} is not a positive number of seconds", "fix or remove it")
    return float(value)


def _read_jsonl(path: Path) -> Utterances:
    paths, texts, durations, lines = [], [], [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where} is not a JSON object ({exc})", JSONL_FIX) from None
            if not isinstance(row, dict):
                raise DataError(f"{where} is not a JSON object: {line.strip()[:60]!r}", JSONL_FIX)
            key = next((k for k in AUDIO_KEYS if k in row), None)
            if key is None or "text" not in row:
                missing = '"audio" (or "audio_filepath")' if key is None else '"text"'
                raise DataError(f"{where} has no {missing} key (its keys: {', '.join(row) or 'none'})", JSONL_FIX)
            audio, text = row[key], row["text"]
            if not isinstance(audio, str) or not audio or not isinstance(text, str):
                raise DataError(f"{where}: {key} and text must be strings, {key} not empty", JSONL_FIX)
            paths.append(_absolute(audio, path.parent))
            texts.append(text)
            durations.append(_duration(row.get("duration"), where))
            lines.append(number)
    if not paths:
        raise DataError(f"manifest {path} has no entries", JSONL_FIX)
    return utterances(paths, texts, path.parent, durations, listing=path, lines=lines)


def _from_table(path: Path, base: Path, audio: tuple[str, ...], text: tuple[str, ...], fix: str) -> Utterances:
    """The utterances of a table with one of the ``audio`` columns, one of the ``text`` columns and optionally
    ``duration``; audio paths relative to ``base``."""
    known = (*audio, *text, "duration")
    table = read_table(
        path,
        header=True,
        known=known,
        column_types={**{c: pa.string() for c in (*audio, *text)}, "duration": pa.float64()},
    )
    found = []
    for names in (audio, text):
        column = next((c for c in names if c in table.column_names), None)
        if column is None:
            raise DataError(
                f"{path} line 1: no column {' or '.join(names)} (its columns: {', '.join(table.column_names)})", fix
            )
        found.append(column)
    raw_paths = table.column(found[0]).to_pylist()
    texts = table.column(found[1]).to_pylist()
    # read_table's header line is line 1, so row r is line r + 2 (blank lines are skipped by the parser)
    empty = next((r for r, p in enumerate(raw_paths) if not p), None)
    if empty is not None:
        raise DataError(f"{path} line {empty + 2}: no {found[0]}", "fill it in or remove that row")
    if "duration" in table.column_names:
        durations = [_duration(d, f"{path} line {r + 2}") for r, d in enumerate(table.column("duration").to_pylist())]
    else:
        durations = None
    paths = [_absolute(p, base) for p in raw_paths]
    return utterances(paths, texts, base, durations, listing=path, lines=list(range(2, len(paths) + 2)))


def read_manifest(source: Source) -> Utterances:
    """A manifest (see the module docstring): ``.csv``/``.tsv`` as a table, anything else as JSONL."""
    if source.manifest is None:
        raise DataError("corpus manifest needs a manifest file", "set data.manifest to a JSONL or CSV file")
    path = Path(source.manifest).expanduser()
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist", f"set data.manifest to a JSONL file: {JSONL_FIX}")
    if path.suffix.lower() in (".csv", ".tsv"):
        return _from_table(
            path,
            path.parent,
            AUDIO_KEYS,
            ("text",),
            "give columns audio (or audio_filepath), text and optionally duration",
        )
    return _read_jsonl(path)


def read_audiofolder(source: Source) -> Utterances:
    """A Hugging Face audiofolder: ``<root>/metadata.csv`` with ``file_name`` and ``transcription`` (or ``text`` /
    ``sentence``), optionally ``duration``."""
    root = Path(source.root or "").expanduser()
    if source.root is None or not root.is_dir():
        raise DataError(f"audiofolder root {root} is not a folder", "set data.root to a folder holding metadata.csv")
    metadata = root / "metadata.csv"
    if not metadata.is_file():
        raise DataError(
            f"{root} has no metadata.csv",
            f"write {metadata} with columns file_name,transcription (audio paths relative to {root})",
        )
    return _from_table(
        metadata,
        root,
        ("file_name",),
        TRANSCRIPT_COLUMNS,
        "give columns file_name and transcription (or text / sentence), optionally duration",
    )
