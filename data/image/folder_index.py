"""Which image files a split holds and their labels: a class-folder tree (``ImageFolder``'s layout) or a listing.

* Folders: ``<root>/<split>/<class>/**/*.{jpg,jpeg,png,webp}``; classes are the training folder's subfolders,
  sorted by name (torchvision's and timm's order). A validation or test folder may hold fewer classes, not
  others; a class folder without images is an error, and files that are not images are counted in the log.
* A listing: a CSV, TSV or Parquet table with ``path`` and ``label`` columns (and an optional ``split`` column
  of train/val/test); relative paths are taken from the listing's folder.

Only paths and label numbers are kept (``recipes.data.columns.StringColumn``), never pixels. A tree's listing is
cached (``recipes.data.index_cache``) and re-read when a folder in it changes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recipes.data.columns import StringColumn
from recipes.data.index_cache import cached_table, folder_stamps, progress
from recipes.data.tables import first_null, line_of, read_table, require_columns
from recipes.modules.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "ImageIndex", "list_class_folders", "read_listing"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
LAYOUT = "<root>/train/<class>/*.jpg (and optionally val/ and test/ beside train/)"


@dataclass
class ImageIndex:
    """The files of one split and the class number of each."""

    paths: StringColumn
    labels: np.ndarray  # int64, one per path

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, rows: np.ndarray) -> ImageIndex:
        return ImageIndex(self.paths.take(rows), self.labels[rows])


def _walk(folder: Path, files: list[str], folders: list[Path], others: list[str]) -> None:
    """Every image under ``folder`` (recursively) into ``files``, every folder into ``folders``."""
    folders.append(folder)
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                _walk(Path(entry.path), files, folders, others)
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                files.append(entry.path)
            elif not entry.name.startswith("."):
                others.append(entry.path)


def _list_tree(split_dir: Path) -> tuple[pa.Table, list[Path]]:
    """The images of ``<split>/<class>/**`` as a table (path, class folder), sorted; and every folder walked."""
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    loose = sorted(e.name for e in os.scandir(split_dir) if e.is_file() and not e.name.startswith("."))
    if loose:
        raise DataError(
            f"{split_dir} holds files outside class folders ({len(loose)}, e.g. {loose[0]})",
            f"move each image into a folder named for its class: {LAYOUT}",
        )
    paths: list[str] = []
    labels: list[str] = []
    folders: list[Path] = [split_dir]
    for name in progress(classes, len(classes), f"listing {split_dir}"):
        files: list[str] = []
        others: list[str] = []
        _walk(split_dir / name, files, folders, others)
        if others:  # captions, annotations: not training data, but said, never dropped silently
            log.warning(
                "%s: %d files that are not %s images are not used, e.g. %s",
                split_dir / name,
                len(others),
                "/".join(IMAGE_SUFFIXES),
                others[0],
            )
        if not files:
            raise DataError(f"class folder {split_dir / name} holds no images", "add images or remove the folder")
        files.sort()
        paths += files
        labels += [name] * len(files)
    table = pa.table({"path": pa.array(paths, pa.large_string()), "label": pa.array(labels, pa.string())})
    return table, folders


def list_class_folders(root: Path, split: str, cache_dir: str | None) -> tuple[StringColumn, pa.Array] | None:
    """(paths, class-folder name of each) of ``<root>/<split>``, or None when that folder does not exist."""
    split_dir = root / split
    if not split_dir.is_dir():
        return None

    def build(stale: pa.Table | None) -> tuple[pa.Table, list]:  # a changed tree is walked again in full
        table, folders = _list_tree(split_dir)
        return table, folder_stamps(folders)

    def restamp(old: list) -> list:
        return folder_stamps(Path(f) for f, _ in old)

    table = cached_table(cache_dir, ["image-folder", str(split_dir.resolve())], build, restamp)
    if table.num_rows == 0:
        raise DataError(f"{split_dir} holds no class folders", f"lay the images out as {LAYOUT}")
    return StringColumn.from_arrow(table.column("path")), table.column("label").combine_chunks()


def read_listing(path: Path) -> tuple[StringColumn, pa.Array, list[str] | None]:
    """(absolute paths, labels, splits or None) of a ``path,label[,split]`` table."""
    table = read_table(path, known=("path", "label", "split"), column_types={"label": pa.string()})
    require_columns(table, path, ("path", "label"), "give a table with columns path,label (and optionally split)")
    for column in [c for c in ("path", "label", "split") if c in table.column_names]:
        row = first_null(table, column)
        if row is not None:
            raise DataError(f"{path} {line_of(table, row)}: no {column}", "fill in that row or remove it")
    base = path.parent
    raw = table.column("path").to_pylist()
    paths = [p if os.path.isabs(p) else str(base / p) for p in raw]
    labels = table.column("label").combine_chunks()
    splits = None
    if "split" in table.column_names:
        splits = [str(v) for v in table.column("split").to_pylist()]
        bad = next((i for i, s in enumerate(splits) if s not in ("train", "val", "test")), None)
        if bad is not None:
            raise DataError(
                f"{path} {line_of(table, bad)}: split {splits[bad]!r} is not train, val or test",
                "fix that row's split",
            )
    unreadable = next((i for i, p in enumerate(raw) if not p.lower().endswith(IMAGE_SUFFIXES)), None)
    if unreadable is not None:
        raise DataError(
            f"{path} {line_of(table, unreadable)}: {raw[unreadable]} is not a {'/'.join(IMAGE_SUFFIXES)} file",
            "list PNG, JPEG or WebP images",
        )
    return StringColumn.of(paths), labels, splits
