"""Fashion-MNIST's official files (Xiao et al., 2017): their names, the SHA-256 of their content, where they
come from (Debian's package, the user's folder, the official download), and the IDX reader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from recipes.data.sources import DataFile, find_files
from recipes.modules.errors import DataError

__all__ = ["FASHION_MNIST", "FASHION_MNIST_DEBIAN", "FASHION_MNIST_HELP", "read_fashion_mnist", "read_idx"]

_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST = {
    split: DataFile(name, sha, _URL + name)
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


def read_fashion_mnist(root: str | os.PathLike | None, system_dir: Path, download: bool) -> dict[str, torch.Tensor]:
    """The four verified files as tensors (``train_images`` ...), found as ``find_files`` says; a folder may also
    hold torchvision's ``FashionMNIST/raw/`` layout."""
    raw = find_files(
        FASHION_MNIST, root, system_dir, FASHION_MNIST_HELP, "fashion-mnist", download, ("FashionMNIST/raw",)
    )
    return {k: read_idx(v, FASHION_MNIST[k].name) for k, v in raw.items()}
