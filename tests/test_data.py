"""Data: the official Fashion-MNIST files, clear errors for missing or corrupt ones, in-memory batching."""

from __future__ import annotations

import gzip
import shutil
import struct

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import recipes.data.image.datamodule as images
from recipes.data.batching import TensorBatchDataset, batch_loader
from recipes.data.image.datamodule import DigitsDataModule, FashionMNISTDataModule, MNIST5kDataModule
from recipes.data.image.fashion_mnist import FASHION_MNIST, FASHION_MNIST_DEBIAN, read_idx
from recipes.modules.errors import RecipeError


def test_fashion_mnist_official_files_load():
    dm = FashionMNISTDataModule(val_size=5000, download=False)
    dm.setup("fit")
    train_x, train_y = dm.splits["train"].tensors
    assert train_x.shape == (55000, 1, 28, 28) and train_x.dtype == torch.uint8
    assert len(dm.splits["val"]) == 5000 and len(dm.splits["test"]) == 10000
    test_y = dm.splits["test"].tensors[1]
    assert torch.equal(torch.bincount(test_y), torch.full((10,), 1000))  # the official test set is balanced
    assert dm.num_classes == 10 and dm.classes[9] == "Ankle boot"


def test_validation_split_is_seeded():
    a, b, c = DigitsDataModule(seed=1), DigitsDataModule(seed=1), DigitsDataModule(seed=2)
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.splits["val"].tensors[0], b.splits["val"].tensors[0])
    assert not torch.equal(a.splits["val"].tensors[0], c.splits["val"].tensors[0])


def test_tiny_datasets_load():
    m = MNIST5kDataModule()
    m.setup("fit")
    assert sum(len(m.splits[s]) for s in ("train", "val", "test")) == 5000
    d = DigitsDataModule()
    d.setup("fit")
    assert sum(len(d.splits[s]) for s in ("train", "val", "test")) == 1797 and d.image_size == 8


def test_corrupt_file_is_one_clear_error(tmp_path):
    for f in FASHION_MNIST.values():
        shutil.copy(FASHION_MNIST_DEBIAN / f.name, tmp_path / f.name)
    with gzip.open(tmp_path / FASHION_MNIST["train_labels"].name, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02\x03")
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False)
    with pytest.raises(RecipeError, match=r"train-labels-idx1-ubyte.gz is corrupt.*checksum"):
        dm.setup("fit")
    shutil.copy(FASHION_MNIST_DEBIAN / FASHION_MNIST["train_labels"].name, tmp_path)
    (tmp_path / FASHION_MNIST["test_images"].name).write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(RecipeError, match="cannot read"):
        dm.setup("fit")


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "FASHION_MNIST_DEBIAN", tmp_path / "no-such-dir")
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False)
    with pytest.raises(RecipeError, match=r"not found in .*apt-get install dataset-fashion-mnist"):
        dm.setup("fit")


def test_root_accepts_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FASHION_MNIST.values():  # torchvision keeps them gunzipped
        (raw / f.name.removesuffix(".gz")).write_bytes(gzip.open(FASHION_MNIST_DEBIAN / f.name).read())
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False, val_size=1)
    dm.setup("fit")
    assert len(dm.splits["test"]) == 10000


def test_read_idx_parses_and_rejects():
    content = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 2, 3) + bytes(range(12))
    t = read_idx(content, "x")
    assert t.shape == (2, 2, 3) and t[1, 1, 2].item() == 11
    with pytest.raises(RecipeError, match="truncated"):
        read_idx(content[:-1], "x")
    with pytest.raises(RecipeError, match="not an unsigned-byte IDX"):
        read_idx(b"\x00\x00\x0d\x01" + content[4:], "x")


def test_batch_loader_matches_default_dataloader():
    x, y = torch.randn(103, 3), torch.arange(103)
    ours = list(batch_loader(TensorBatchDataset(x, y), batch_size=10, shuffle=False))
    ref = list(DataLoader(TensorDataset(x, y), batch_size=10))
    assert len(ours) == len(ref) == 11
    for (ox, oy), (rx, ry) in zip(ours, ref):
        assert torch.equal(ox, rx) and torch.equal(oy, ry)
    shuffled = torch.cat([b[1] for b in batch_loader(TensorBatchDataset(x, y), 16, shuffle=True, seed=3)])
    assert sorted(shuffled.tolist()) == list(range(103)) and shuffled.tolist() != list(range(103))


def test_augmentation_is_per_chunk_and_training_only():
    dm = DigitsDataModule(augment=True, augment_chunk=4)
    x = torch.randint(0, 255, (32, 1, 8, 8), dtype=torch.uint8)
    y = torch.zeros(32, dtype=torch.long)

    class _T:
        training = True

    dm.trainer = _T()
    torch.manual_seed(0)
    out, _ = dm.on_after_batch_transfer((x, y), 0)
    plain = (x.float() / 255 - dm.mean) / dm.std
    assert out.shape == plain.shape and not torch.equal(out, plain)
    _T.training = False
    out, _ = dm.on_after_batch_transfer((x, y), 0)
    assert torch.equal(out, plain)
