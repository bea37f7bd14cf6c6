"""Durations of the utterances a source does not time, from the audio files' headers alone (``soundfile.info``:
nothing decoded), cached beside the runs (``recipes.data.index_cache``).

The cache is named by the source (its kind, its path, the ``include`` patterns) and stamped with a digest of the
paths read and each file's size and modification time: a second set-up reads no header at all, only stats the
files; when a file is changed, added or removed, only the headers of the changed and new files are read again.
Every listed file must exist (a missing one is an error naming its line); a file whose header cannot be read is
logged by name and left out, and past ``max_bad_fraction`` of the source the set-up stops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import stat
from typing import Any

import numpy as np
import pyarrow as pa

from recipes.data.columns import StringColumn
from recipes.data.index_cache import cached_table, progress
from recipes.data.speech.audio import AudioError, audio_seconds
from recipes.data.speech.utterances import Utterances
from recipes.modules.errors import DataError

__all__ = ["file_stats", "header_durations", "with_durations"]

log = logging.getLogger(__name__)


def file_stats(utts: Utterances) -> np.ndarray:
    """(size, modification time in ns) of every file, int64 ``(N, 2)``; a missing file is a DataError naming its
    line (or its path)."""
    out = np.empty((len(utts), 2), dtype=np.int64)
    for i, path in enumerate(utts.paths):
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            where = utts.where(i)
            named = "" if where == path else f": {path}"
            raise DataError(
                f"{where}{named} does not exist (or is not a file)", "restore the audio file or remove its row"
            )
        out[i] = (st.st_size, st.st_mtime_ns)
    return out


def _stamp(paths: StringColumn, stats: np.ndarray) -> dict[str, Any]:
    """The fingerprint of the files read: a digest of their paths, sizes and modification times (one line of
    metadata however many files; checking it costs one ``stat`` a file)."""
    digest = hashlib.sha1()
    for part in (paths.offsets, paths.data, np.ascontiguousarray(stats)):
        digest.update(memoryview(part).cast("B"))
    return {"files": len(paths), "sha1": digest.hexdigest()}


def header_durations(
    paths: StringColumn, stats: np.ndarray, cache_dir: str | None, name: list[Any]
) -> tuple[np.ndarray, list[str]]:
    """(seconds, NaN where unreadable; the reason each unreadable file has, "" for the rest) of ``paths``.

    The cached table keeps each file's path, size and modification time: when the source has changed, the rows
    of files that have not are kept and only the changed or new files' headers are read.
    """
    stamp = _stamp(paths, stats)

    def build(stale: pa.Table | None) -> tuple[pa.Table, dict[str, Any]]:
        known: dict[str, tuple[int, int, float, str]] = {}
        if stale is not None and {"path", "size", "mtime_ns"} <= set(stale.column_names):
            cols = [stale.column(c).to_pylist() for c in ("path", "size", "mtime_ns", "seconds", "error")]
            known = {p: (size, mtime, sec, err) for p, size, mtime, sec, err in zip(*cols)}
        seconds, errors = np.empty(len(paths)), [""] * len(paths)
        todo = []
        for i, path in enumerate(paths):
            old = known.get(path)
            if old is not None and old[0] == stats[i, 0] and old[1] == stats[i, 1]:
                seconds[i], errors[i] = old[2], old[3]
            else:
                todo.append(i)
        for i in progress(todo, len(todo), "reading audio headers"):
            try:
                seconds[i] = audio_seconds(paths[i])
            except AudioError as exc:
                seconds[i], errors[i] = math.nan, str(exc)
        table = pa.table(
            {
                "path": paths.to_arrow(),
                "size": pa.array(stats[:, 0]),
                "mtime_ns": pa.array(stats[:, 1]),
                "seconds": pa.array(seconds, pa.float64()),
                "error": pa.array(errors, pa.string()),
            }
        )
        return table, stamp

    table = cached_table(cache_dir, ["speech-headers", *name], build, lambda old: stamp)
    return table.column("seconds").to_numpy(), table.column("error").to_pylist()


def with_durations(
    utts: Utterances, cache_dir: str | None, name: list[Any], max_bad_fraction: float, what: str
) -> Utterances:
    """``utts`` with every duration known: the untimed ones from the headers (cached under ``name``), files whose
    header cannot be read left out (each logged); more of them than ``max_bad_fraction`` of ``utts`` is an error.
    ``what`` names the source in messages."""
    stats = file_stats(utts)
    untimed = np.flatnonzero(np.isnan(utts.durations))
    if not len(untimed):
        return utts
    seconds, errors = header_durations(utts.paths.take(untimed), stats[untimed], cache_dir, name)
    durations = utts.durations.copy()
    durations[untimed] = seconds
    bad = [(int(untimed[j]), reason) for j, reason in enumerate(errors) if reason]
    for row, reason in bad:
        log.warning("skipped %s: %s", utts.paths[row], reason)
    allowed = math.floor(max_bad_fraction * len(utts))
    if len(bad) > allowed:
        row, reason = bad[0]
        raise DataError(
            f"{len(bad)} of the {len(utts)} audio files of {what} cannot be read, more than data.max_bad_fraction "
            f"{max_bad_fraction:g} allows ({allowed}); e.g. {utts.named(row)}: {reason}",
            "repair or remove those files (or their rows in the listing), or raise data.max_bad_fraction",
        )
    utts = dataclasses.replace(utts, durations=durations)
    if not bad:
        return utts
    return utts.take(np.setdiff1d(np.arange(len(utts)), [row for row, _ in bad]))
