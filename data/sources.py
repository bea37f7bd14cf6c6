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

import numpy as np
import torch

from recipes.modules.errors import DataError

__all__ = ["DataFile", "FASHION_MNIST", "existing_path", "find_files", "read_idx"]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its official name, the SHA-256 of its uncompressed content, its URL."""

    name: str
    sha256: str
    url: str


_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST = {
    split: DataFile(name, sha, _FMNIST_URL + name)
    for split, name, sha in [
        (
            "train_images",
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        (
            "train_labels",
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        (
            "test_images",
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        (
            "test_labels",
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ]
}
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HELP = (
    "install the Debian package (apt-get install dataset-fashion-mnist), or put the four official IDX files "
    "(train-images-idx3-ubyte.gz ...) in a folder and pass --data.root FOLDER"
)


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


def _candidates(folder: Path, f: DataFile) -> list[Path]:
    raw = f.name.removesuffix(".gz")
    return [
        folder / f.name,
        folder / raw,
        folder / "FashionMNIST" / "raw" / f.name,
        folder / "FashionMNIST" / "raw" / raw,
    ]


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
    files: dict[str, DataFile], root: str | os.PathLike | None, system_dir: Path, help_text: str, download: bool = True
) -> dict[str, bytes]:
    """The verified uncompressed content of each file: from ``root`` or a download into it when ``root`` is
    given, else from ``system_dir`` or a download into ``~/.cache/recipes``.

    A ``root`` that does not exist is an error, and one without the files never falls back to
    ``system_dir``: the data used is the data the user pointed at. A file found but corrupt is an error
    (never silently replaced); a file found nowhere is an error that says how to get it.
    """
    folders = [existing_path(root, "data.root", "folder", help_text)] if root else [system_dir]
    out: dict[str, bytes] = {}
    for key, f in files.items():
        path = next((p for folder in folders for p in _candidates(folder, f) if p.is_file()), None)
        if path is None and download:
            target = Path(root).expanduser() if root else Path.home() / ".cache" / "recipes" / "fashion-mnist"
            path = _download(f, target)
        if path is None:
            where = ", ".join(str(d) for d in folders)
            raise DataError(f"{f.name} not found in {where} and the download failed", help_text)
        out[key] = _verified(path, f, help_text)
    return out


def read_idx(content: bytes, name: str) -> torch.Tensor:
    """Parse an IDX file (unsigned-byte data): magic ``0x0000 08 ndim``, big-endian dims, then the payload."""
    if len(content) < 4 or content[:3] != b"\x00\x00\x08":
        raise DataError(f"{name} is not an unsigned-byte IDX file", "use the official Fashion-MNIST files")
    ndim = content[3]
    dims = np.frombuffer(content, dtype=">u4", count=ndim, offset=4).astype(int)
    offset = 4 + 4 * ndim
    if len(content) - offset != int(np.prod(dims)):
        raise DataError(f"{name} is truncated: header says {tuple(dims)}", "replace it with an intact copy")
    return torch.from_numpy(np.frombuffer(content, dtype=np.uint8, offset=offset).reshape(*dims).copy())
