"""The index of a speech corpus, whatever its source: audio paths, raw transcripts and durations, one row an
utterance (``Utterances``), and where a source is (``Source``). Paths are a ``StringColumn``, so forked loader
workers copy no per-path Python object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recipes.data.columns import StringColumn

__all__ = ["Source", "Utterances", "utterances"]


@dataclass
class Utterances:
    """The index of a corpus: one row an utterance, paths and transcripts only (no audio).

    Attributes:
        paths: the audio files (absolute, or as the source names them).
        texts: raw transcripts.
        durations: seconds (float64), NaN where the source gives none.
        base: the folder ``data.include`` patterns are relative to.
        listing: the file the rows were read from (a manifest, a transcript file), for messages; None for several.
        lines: the line of each row in ``listing`` (int64; 0 where unknown), for messages.
    """

    paths: StringColumn
    texts: list[str]
    durations: np.ndarray
    base: Path
    listing: Path | None = None
    lines: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.lines is None:
            self.lines = np.zeros(len(self.paths), np.int64)
        if not len(self.paths) == len(self.texts) == len(self.durations) == len(self.lines):
            raise ValueError("one text, one duration and one line per path")

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, rows: np.ndarray) -> Utterances:
        """The utterances at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return Utterances(
            self.paths.take(rows),
            [self.texts[i] for i in rows.tolist()],
            self.durations[rows],
            self.base,
            self.listing,
            self.lines[rows],
        )

    def where(self, row: int) -> str:
        """``<listing> line N`` of a row, or its path where the line is unknown."""
        if self.listing is not None and self.lines[row] > 0:
            return f"{self.listing} line {int(self.lines[row])}"
        return self.paths[row]

    def named(self, row: int) -> str:
        """A row's path, with its line in the listing where known."""
        where = self.where(row)
        return self.paths[row] if where == self.paths[row] else f"{self.paths[row]} ({where})"


def utterances(
    paths: list[str],
    texts: list[str],
    base: Path,
    durations: list[float] | None = None,
    listing: Path | None = None,
    lines: list[int] | None = None,
) -> Utterances:
    """An ``Utterances`` from the Python lists a reader builds (dropped afterwards)."""
    return Utterances(
        StringColumn.of(paths),
        texts,
        np.asarray(durations if durations is not None else [np.nan] * len(paths), dtype=np.float64),
        base,
        listing,
        np.asarray(lines if lines is not None else [0] * len(paths), dtype=np.int64),
    )


@dataclass(frozen=True)
class Source:
    """Where a corpus is: ``data.root``, ``data.manifest`` and ``data.transcripts`` as the user set them (None:
    unset; a reader with a default, such as the Asterisk one, uses it)."""

    root: Path | None = None
    manifest: Path | None = None
    transcripts: Path | None = None
