"""A user's own images: class folders (``<root>/train/<class>/``) or a ``path,label`` listing, any size, RGB or
grayscale, decoded and transformed in worker processes a batch at a time (``recipes.data.image.files``).

Splits: ``val/`` and ``test/`` folders (or ``split`` values in a listing) are used when present; otherwise seeded
shares of the training images are held out. Class names are the training folders' names, sorted, and reach the
model (``class_names``), so checkpoints and predictions name classes as the folders do.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from recipes.data.batching import batch_loader, default_workers
from recipes.data.columns import StringColumn
from recipes.data.datamodule import Split, TaskDataModule
from recipes.data.image.files import ImageFiles, image_transforms
from recipes.data.image.folder_index import IMAGE_SUFFIXES, LAYOUT, ImageIndex, list_class_folders, read_listing
from recipes.data.index_cache import DEFAULT_CACHE
from recipes.data.sources import existing_path
from recipes.modules.errors import ConfigError, DataError

__all__ = ["ImageFolderDataModule", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SPLITS = ("train", "val", "test")


class ImageFolderDataModule(TaskDataModule):
    """Images from class folders or a listing, streamed from disk.

    Args:
        root: a folder laid out as ``<root>/train/<class>/*.jpg`` with optional ``val/`` and ``test/`` beside
            ``train/`` (PNG, JPEG and WebP; any size; nested folders inside a class folder are read too).
        listing: instead of ``root``, a CSV/TSV/Parquet table with columns ``path`` and ``label`` (and optionally
            ``split``: train, val or test); relative paths are taken from the listing's folder.
        image_size: images are cropped and resized to ``image_size`` x ``image_size``.
        channels: 3 (RGB) or 1 (grayscale); images of the other kind are converted.
        mean: per-channel mean of the normalization, in 0-1 units; None: ImageNet's (its average for grayscale).
        std: per-channel standard deviation, likewise.
        augment: training images get RandomResizedCrop (``crop_scale``) and a horizontal flip; otherwise the
            evaluation transform.
        crop_scale: the range of the share of the image a random crop covers.
        crop_fraction: evaluation resizes the short side to ``image_size / crop_fraction`` and crops the centre
            (0.875: timm's and torchvision's 224-of-256; 1.0: the whole image).
        val_fraction: share of the training images held out for validation when there is no ``val`` split.
        test_fraction: share of the training images held out for testing when there is no ``test`` split.
        batch_size: images per batch (per device).
        num_workers: processes decoding images; None: one a core, at most 4.
        seed: seed of the held-out splits, the shuffling and the random crops.
        max_bad_fraction: share of a split's images that may fail to decode (each logged, counted per epoch as
            ``<stage>/bad_items``) before the run stops.
        cache_dir: where the listing of a large folder tree is cached; null: list it every time.
        predict_dir: a folder of images to classify with ``predict``; None predicts the test split.
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py, when both exist).
    model_links: ClassVar[dict[str, str]] = {
        "num_classes": "num_classes",
        "in_channels": "in_channels",
        "image_size": "image_size",
        "classes": "class_names",
    }

    def __init__(
        self,
        root: str | None = None,
        listing: str | None = None,
        image_size: int = 224,
        channels: int = 3,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: bool = True,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_fraction: float = 0.875,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 64,
        num_workers: int | None = None,
        seed: int = 0,
        max_bad_fraction: float = 0.001,
        cache_dir: str | None = DEFAULT_CACHE,
        predict_dir: str | None = None,
    ) -> None:
        super().__init__()
        if (root is None) == (listing is None):
            raise ConfigError(
                "image_folder reads either data.root (class folders) or data.listing (a path,label table)",
                f"set one of them: --data.root DIR with {LAYOUT}, or --data.listing FILE.csv",
            )
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}", "set data.channels 3 (RGB) or 1 (grayscale)")
        mean = list(mean) if mean is not None else list(IMAGENET_MEAN if channels == 3 else [sum(IMAGENET_MEAN) / 3])
        std = list(std) if std is not None else list(IMAGENET_STD if channels == 3 else [sum(IMAGENET_STD) / 3])
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ConfigError(
                f"mean and std need one value per channel ({channels}), std > 0; got {mean} and {std}",
                "fix data.mean / data.std, or leave them unset for ImageNet's statistics",
            )
        checks = (
            image_size >= 8,
            batch_size >= 1,
            0 < crop_fraction <= 1,
            0 < crop_scale[0] <= crop_scale[1] <= 1,
            0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1,
            0 <= max_bad_fraction < 1,
            num_workers is None or num_workers >= 0,
        )
        if not all(checks):
            raise ConfigError(
                "image_size >= 8, batch_size >= 1, crop_fraction in (0, 1], 0 < crop_scale[0] <= crop_scale[1] <= 1, "
                "val_fraction and test_fraction in [0, 1) summing below 1, max_bad_fraction in [0, 1) and "
                "num_workers >= 0 are required",
                "fix the data settings",
            )
        self.root = existing_path(root, "data.root", "folder", f"lay the images out as {LAYOUT}") if root else None
        self.listing = (
            existing_path(listing, "data.listing", "file", "give a CSV/Parquet table with columns path,label")
            if listing
            else None
        )
        if predict_dir is not None:
            existing_path(predict_dir, "data.predict_dir", "folder", "pass a folder of images to --data.predict_dir")
        self.image_size, self.in_channels = image_size, channels
        self.mean, self.std = mean, std
        self.augment, self.crop_scale, self.crop_fraction = augment, tuple(crop_scale), crop_fraction
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.batch_size, self.max_bad_fraction, self.cache_dir = batch_size, max_bad_fraction, cache_dir
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.predict_dir = predict_dir
        self._index: dict[str, ImageIndex] | None = None
        self._classes: tuple[str, ...] | None = None

    # --- what the model is built from (linked by the CLI) -------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        self.index()
        assert self._classes is not None
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # --- the index ----------------------------------------------------------------------------------
    def _raw_splits(self) -> dict[str, tuple[StringColumn, pa.Array]]:
        """Each split that the source holds: (paths, label names)."""
        if self.root is not None:
            found = {s: list_class_folders(self.root, s, self.cache_dir) for s in SPLITS}
            if found["train"] is None:
                raise DataError(f"{self.root} has no train/ folder", f"lay the images out as {LAYOUT}")
            return {s: v for s, v in found.items() if v is not None}
        paths, labels, splits = read_listing(self.listing)
        if splits is None:
            return {"train": (paths, labels)}
        where = np.asarray(splits)
        out = {}
        for s in SPLITS:
            rows = np.flatnonzero(where == s)
            if len(rows):
                out[s] = (paths.take(rows), labels.take(pa.array(rows)))
        if "train" not in out:
            raise DataError(f"{self.listing} lists no row with split train", "mark the training rows split=train")
        return out

    def index(self) -> dict[str, ImageIndex]:
        """The files and class numbers of train, val and test (held out from train where the source has none)."""
        if self._index is not None:
            return self._index
        raw = self._raw_splits()
        classes = sorted(pc.unique(raw["train"][1]).to_pylist())
        where = self.root / "train" if self.root is not None else self.listing
        if len(classes) < 2:
            raise DataError(f"{where} holds {len(classes)} class", "give at least two classes to tell apart")
        value_set = pa.array(classes, raw["train"][1].type)
        index = {}
        for split, (paths, names) in raw.items():
            numbers = pc.index_in(names, value_set=value_set)
            if numbers.null_count:
                row = int(pc.index(pc.is_null(numbers), True).as_py())
                raise DataError(
                    f"{split} images of class {names[row].as_py()!r} ({paths[row]}), which the training images lack",
                    f"train on every class you evaluate: add training images of it or remove that class from {split}",
                )
            index[split] = ImageIndex(paths, numbers.to_numpy(zero_copy_only=False).astype(np.int64))
        held_out = [s for s in ("val", "test") if s not in index]
        if held_out:
            index.update(self._hold_out(index, held_out))
        self._classes, self._index = tuple(classes), index
        return index

    def _hold_out(self, index: dict[str, ImageIndex], splits: list[str]) -> dict[str, ImageIndex]:
        train = index["train"]
        n = len(train)
        perm = np.random.default_rng(self.seed).permutation(n)
        fractions = {"val": self.val_fraction, "test": self.test_fraction}
        sizes = {s: round(n * fractions[s]) for s in splits}
        if n - sum(sizes.values()) < 1 or any(v < 1 and fractions[s] > 0 for s, v in sizes.items()):
            raise ConfigError(
                f"{n} training images cannot give {' and '.join(splits)} held-out splits of "
                f"{', '.join(str(v) for v in sizes.values())} images and leave some to train on",
                "add images, add val/ and test/ folders, or change data.val_fraction / data.test_fraction",
            )
        out, start = {}, 0
        for s in splits:
            out[s] = train.take(np.sort(perm[start : start + sizes[s]]))
            start += sizes[s]
        out["train"] = train.take(np.sort(perm[start:]))
        return out

    # --- datasets and loaders -----------------------------------------------------------------------
    def dataset(self, split: str, train: bool = False) -> ImageFiles:
        idx = self.index()[split]
        transform = image_transforms(self.image_size, train and self.augment, self.crop_scale, self.crop_fraction)
        return ImageFiles(idx.paths, idx.labels, self.in_channels, transform)

    def setup(self, stage: str | None = None) -> None:
        self.index()

    def _loader(self, dataset: ImageFiles, split: str):
        return batch_loader(
            dataset,
            self.batch_size,
            shuffle=split == "train",
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            split=split,
            max_bad_fraction=self.max_bad_fraction,
        )

    def loader(self, split: Split):
        """``predict``: batches of (image, label or -1, index) of ``data.predict_dir``, else of the test split;
        ``prediction_names()["index"]`` names each row."""
        if split == "predict" and self.predict_dir is not None:
            return self._predict_loader()
        split = "test" if split == "predict" else split
        return self._loader(self.dataset(split, train=split == "train"), split)

    def _predict_paths(self) -> StringColumn:
        root = Path(self.predict_dir).expanduser()
        files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"no {'/'.join(IMAGE_SUFFIXES)} image in {root}", "pass a folder of images")
        return StringColumn.of(files)

    def _predict_loader(self):
        paths = self._predict_paths()
        transform = image_transforms(self.image_size, False, self.crop_scale, self.crop_fraction)
        files = ImageFiles(paths, np.full(len(paths), -1), self.in_channels, transform)
        self._predict_names = paths
        return self._loader(files, "predict")

    def prediction_names(self) -> dict[str, StringColumn]:
        """Each predicted row's file (``recipes.modules.prediction_writer.NamedPredictions``)."""
        return {"index": self._predict_names if self.predict_dir is not None else self.index()["test"].paths}

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, *rest = batch
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return ((x.float() / 255.0 - mean) / std, *rest)
