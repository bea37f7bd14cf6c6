"""A folder of PNG/JPEG files to classify: decoded with torchvision, converted to the model's channels
and size; a file that cannot be decoded is reported by name and skipped, never silently dropped."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as F

from recipes.modules.errors import DataError

__all__ = ["ImageFolderSet", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


class ImageFolderSet:
    """Every PNG/JPEG under ``folder`` (sorted, recursive), as a uint8 ``(N, C, size, size)`` tensor.

    ``paths`` lists the decoded files in row order and ``skipped`` the (path, reason) of the rest.
    """

    def __init__(self, folder: str | Path, channels: int, size: int) -> None:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise DataError(
                f"predict_dir {root} is not a folder", "pass a folder of PNG/JPEG files to --data.predict_dir"
            )
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
        images, self.paths, self.skipped = [], [], []
        for path in files:
            try:
                img = decode_image(str(path), mode=mode)
            except (RuntimeError, ValueError, OSError) as exc:
                self.skipped.append((path, str(exc).splitlines()[0]))
                log.warning("skipped %s: cannot decode (%s)", path, self.skipped[-1][1])
                continue
            images.append(F.resize(img, [size, size], antialias=True))
            self.paths.append(path)
        if not images:
            raise DataError(
                f"no decodable PNG/JPEG file in {root} ({len(self.skipped)} skipped)", "check the folder's contents"
            )
        self.images = torch.stack(images)
        log.warning("predict: %d images from %s, %d skipped", len(self.paths), root, len(self.skipped))
