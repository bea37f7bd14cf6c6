"""Where a dataset's files come from: the user's ``root`` (and a download into it), or without one a
system package, then the official download; each file is checked against the official content's
SHA-256, and when no source works one error says how to get the data. ``existing_path`` is the check
every DataModule applies to a path the user gave: one that does not exist is an error, never a
reason to look elsewhere."""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recipes.modules.errors import DataError

__all__ = ["DataFile", "existing_path", "find_files"]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its official name, the SHA-256 of its uncompressed content, its URL."""

    name: str
    sha256: str
    url: str


def existing_path(path: str | os.PathLike, key: str, kind: Literal["folder", "file"], fix: str) -> Path:
    """``path`` with ``~`` expanded, checked to exist as a ``kind``; else a ConfigError naming ``--key``.

    For paths the user gave: a default left as None keeps looking in its default places instead.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"--{key} {p} does not exist", fix)
    if kind == "folder" and not p.is_dir():
        raise DataError(f"--{key} {p} is a file, not a folder", fix)
    if kind == "file" and not p.is_file():
        raise DataError(f"--{key} {p} is a folder, not a file", fix)
    return p


def _candidates(folder: Path, f: DataFile, subdirs: tuple[str, ...]) -> list[Path]:
    raw = f.name.removesuffix(".gz")
    return [d / name for d in (folder, *(folder / sub for sub in subdirs)) for name in (f.name, raw)]


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}", "replace the file with an intact copy") from None


def _verified(path: Path, f: DataFile, help_text: str) -> bytes:
    content = _read_bytes(path)
    if hashlib.sha256(content).hexdigest() != f.sha256:
        raise DataError(f"{path} is corrupt or not the official {f.name} (checksum mismatch)", help_text)
    return content


def _download(f: DataFile, folder: Path) -> Path | None:
    from torchvision.datasets.utils import download_url

    try:
        download_url(f.url, str(folder), f.name)
    except Exception:  # offline, blocked, or a server error: the caller tries the next source / explains
        return None
    path = folder / f.name
    return path if path.exists() else None


def find_files(
    files: dict[str, DataFile],
    root: str | os.PathLike | None,
    system_dir: Path,
    help_text: str,
    cache: str,
    download: bool = True,
    subdirs: tuple[str, ...] = (),
) -> dict[str, bytes]:
    """The verified uncompressed content of each file: from ``root`` or a download into it when ``root`` is
    given, else from ``system_dir`` or a download into ``~/.cache/recipes/<cache>``. Each folder is also
    searched in its ``subdirs`` (another tool's layout), and each file gzipped or not.

    A ``root`` that does not exist is an error, and one without the files never falls back to
    ``system_dir``: the data used is the data the user pointed at. A file found but corrupt is an error
    (never silently replaced); a file found nowhere is an error that says how to get it.
    """
    folders = [existing_path(root, "data.root", "folder", help_text)] if root else [system_dir]
    out: dict[str, bytes] = {}
    for key, f in files.items():
        path = next((p for folder in folders for p in _candidates(folder, f, subdirs) if p.is_file()), None)
        if path is None and download:
            target = Path(root).expanduser() if root else Path.home() / ".cache" / "recipes" / cache
            path = _download(f, target)
        if path is None:
            where = ", ".join(str(d) for d in folders)
            raise DataError(f"{f.name} not found in {where} and the download failed", help_text)
        out[key] = _verified(path, f, help_text)
    return out
