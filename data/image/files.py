"""Image files decoded a batch at a time (in the loader's worker processes): torchvision.io decodes JPEG, PNG and
WebP straight into uint8 tensors, torchvision's v2 transforms crop and resize them there, and the batch leaves
the worker as uint8 (a quarter of float32's bytes); normalization happens on the device
(``ImageFolderDataModule.on_after_batch_transfer``).

Random transforms draw from a generator seeded by the batch (``IndexBatch.seed``), so a batch's crops and flips
are the same whichever worker makes it, with any number of workers, and after a resume.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms import v2

from recipes.data.batching import LoadedBatch
from recipes.data.columns import StringColumn

__all__ = ["ImageFiles", "image_transforms"]


def image_transforms(
    size: int, augment: bool, crop_scale: tuple[float, float], crop_fraction: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Training (RandomResizedCrop and a horizontal flip) or evaluation (resize the short side to
    ``size / crop_fraction``, then a centre crop) transforms to ``size`` x ``size``, on uint8 tensors."""
    if augment:
        return v2.Compose(
            [v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True), v2.RandomHorizontalFlip()]
        )
    return v2.Compose([v2.Resize(round(size / crop_fraction), antialias=True), v2.CenterCrop(size)])


class ImageFiles(Dataset):
    """Decodes the images of a batch of indices: ``(images (B, C, S, S) uint8, labels (B,), indices (B,))`` of
    those that decode, in a ``LoadedBatch`` with the (path, reason) of those that do not.

    Args:
        paths: the image files.
        labels: class number of each (-1 where unknown, for predict).
        channels: 3 (RGB; grayscale images are repeated) or 1 (grayscale; colour images are converted).
        transform: applied to each decoded image.
    """

    decodes_files = True  # its loader counts and logs undecodable items (recipes.data_health)

    def __init__(
        self, paths: StringColumn, labels: np.ndarray, channels: int, transform: Callable[[torch.Tensor], torch.Tensor]
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.paths, self.labels, self.transform = paths, np.asarray(labels, dtype=np.int64), transform
        self.mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, path: str) -> torch.Tensor:
        return self.transform(decode_image(read_file(path), mode=self.mode, apply_exif_orientation=True))

    def __getitem__(self, indices: list[int]) -> LoadedBatch:  # type: ignore[override]
        images, kept, bad = [], [], []
        seed = getattr(indices, "seed", None)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for i in indices:
                path = self.paths[i]
                try:
                    images.append(self._decode(path))
                except (RuntimeError, OSError, ValueError) as exc:
                    bad.append(
                        (path, f"cannot decode ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
                    )
                    continue
                kept.append(i)
        if not images:
            return LoadedBatch(None, bad, len(indices))
        rows = np.asarray(kept, dtype=np.int64)
        batch = (torch.stack(images), torch.from_numpy(self.labels[rows]), torch.from_numpy(rows))
        return LoadedBatch(batch, bad, len(indices))
