"""Strings held as one buffer and offsets (Arrow's large_string layout), for indexes of 10^5-10^7 files or ids.

A Python list of a million paths costs about 100 MB of objects, and every worker process that reads it
touches their reference counts, so the pages are copied into each worker one by one. ``StringColumn`` keeps
two numpy arrays instead (the UTF-8 bytes and int64 offsets): no per-string object, nothing for a forked
worker to copy, and it converts to and from ``pyarrow`` without copying, so indexes cache as Arrow files.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

__all__ = ["StringColumn"]


class StringColumn(Sequence[str]):
    """An immutable sequence of strings stored as ``data`` (uint8) and ``offsets`` (int64, one more than items)."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(data):
            raise ValueError("offsets must start at 0 and end at len(data)")
        self.data, self.offsets = data, offsets

    @classmethod
    def of(cls, strings: Iterable[str]) -> StringColumn:
        """Pack Python strings (the list built while listing a folder, dropped afterwards)."""
        return cls.from_arrow(pa.array(list(strings) if not isinstance(strings, list) else strings, pa.large_string()))

    @classmethod
    def from_arrow(cls, array: pa.Array | pa.ChunkedArray) -> StringColumn:
        """A view of an Arrow string array (copied once if it is chunked, sliced or not ``large_string``)."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
        if array.null_count:
            raise ValueError("a string column holds nulls")
        _, offsets, data = array.buffers()
        offs = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        start, end = int(offs[0]) if len(offs) else 0, int(offs[-1]) if len(offs) else 0
        return cls(raw[start:end], offs - start)

    def to_arrow(self) -> pa.Array:
        return pa.LargeStringArray.from_buffers(len(self), pa.py_buffer(self.offsets), pa.py_buffer(self.data))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def take(self, indices: np.ndarray) -> StringColumn:
        """The strings at ``indices``, as a new column (one gather, no Python strings)."""
        return StringColumn.from_arrow(self.to_arrow().take(pa.array(np.asarray(indices, dtype=np.int64))))

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.offsets.nbytes

    def __repr__(self) -> str:
        return f"StringColumn({len(self)} strings, {self.nbytes} bytes)"
