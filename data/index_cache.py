"""Indexes of large sources cached beside the runs, and a progress bar for the work that builds them.

Listing 10^5-10^6 files or reading as many audio headers takes seconds to minutes; the result (a table of
paths, labels, durations) is written as an Arrow file under ``cache_dir``, named by the source and the kind
of index, and stamped with the source's fingerprint: the modification times of its folders (a file added,
removed or renamed changes its folder's), or the size and time of a listing file. A second run whose
fingerprint matches reads the table back at once (memory-mapped); any change rebuilds it. Files are written
to a temporary name and renamed, so a killed run never leaves a half-written index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import pyarrow as pa
import pyarrow.feather as feather

__all__ = ["cached_table", "file_stamp", "folder_stamps", "progress", "DEFAULT_CACHE"]

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_CACHE = "runs/.cache/index"
SHOW_PROGRESS_FROM = 5000  # items: smaller jobs finish before a bar would be worth drawing


def progress(items: Iterable[T], total: int, description: str) -> Iterator[T]:
    """``items``, with a transient rich progress bar on stderr when there are many and stderr is a terminal."""
    if total < SHOW_PROGRESS_FROM or not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, total=total, description=description, transient=True, console=Console(stderr=True))


def file_stamp(path: Path) -> list[Any]:
    """A file's fingerprint: its resolved path, size and modification time."""
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def folder_stamps(folders: Iterable[Path]) -> list[list[Any]]:
    """The fingerprint of a folder tree: each folder's path and modification time (a folder's time changes
    when an entry is added, removed or renamed in it)."""
    return [[str(f), f.stat().st_mtime_ns] for f in folders]


def _stamp_of(table: pa.Table) -> Any:
    raw = (table.schema.metadata or {}).get(b"recipes.stamp")
    return json.loads(raw) if raw else None


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def cached_table(
    cache_dir: str | os.PathLike | None,
    name: list[Any],
    build: Callable[[pa.Table | None], tuple[pa.Table, Any]],
    restamp: Callable[[Any], Any],
) -> pa.Table:
    """The table ``build()`` makes, read back from the cache while its source is unchanged.

    Args:
        cache_dir: the cache folder; None builds every time.
        name: what the index is of (source kind, path, settings that change it): it names the file.
        build: makes the table and returns it with the source's fingerprint (``file_stamp``, ``folder_stamps``);
            it is given the cached table whose source has changed (or None), to keep the rows still true.
        restamp: the fingerprint now, given the cached one: for a folder tree it stats the folders the cached
            fingerprint lists, so checking the cache costs one ``stat`` a folder, never a walk of the files.
    """
    if cache_dir is None:
        return build(None)[0]
    key = hashlib.sha1(json.dumps(name, default=str).encode()).hexdigest()[:20]
    path = Path(cache_dir).expanduser() / f"{key}.arrow"
    stale = None
    if path.is_file():
        try:
            cached = feather.read_table(str(path), memory_map=True)
            old = _stamp_of(cached)
            if old is not None and _plain(restamp(old)) == old:
                return cached
            stale = cached
        except (pa.ArrowInvalid, OSError, ValueError, TypeError):  # damaged, foreign, or a folder gone: rebuilt
            pass
    table, stamp = build(stale)
    meta = {**(table.schema.metadata or {}), b"recipes.stamp": json.dumps(_plain(stamp)).encode()}
    table = table.replace_schema_metadata(meta)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            feather.write_feather(table, tmp, compression="uncompressed")
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:  # a read-only or full disk costs the next run time, not this one its data
        log.warning("could not cache the index in %s (%s)", path.parent, exc)
    return table
