"""A user's own images: class folders and listings read into the same pixels as the built-in path, held-out
splits, one-line errors for bad trees and tables, the cached listing, decoding in worker processes (the same
batches with any number of workers), undecodable files skipped and counted, and library networks by name."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from recipes.__main__ import main
from recipes.data.batching import IndexBatch
from recipes.data.image import folder_index
from recipes.data.image.folder import ImageFolderDataModule
from recipes.modules.errors import RecipeError
from recipes.modules.image.nets import build_image_net
from tests.conftest import CONFIGS, QUIET, write_image_tree
from tests.test_image_fit import last_metrics

GRAY8 = {"image_size": 8, "channels": 1, "augment": False, "crop_fraction": 1.0, "cache_dir": None}


def _batch(dataset, rows, seed: int | None = None):
    indices = IndexBatch(rows)
    if seed is not None:
        indices.seed = seed
    return dataset[indices]


def test_folders_give_classes_labels_and_held_out_splits(image_tree):
    dm = ImageFolderDataModule(root=str(image_tree), **GRAY8, val_fraction=0.1)
    index = dm.index()
    assert dm.classes == tuple(f"d{i}" for i in range(10)) and dm.num_classes == 10
    assert len(index["test"]) == 360 and len(index["val"]) == round(0.1 * 1437) and len(index["train"]) == 1437 - 144
    for split in ("train", "val", "test"):  # every file's label is its folder's class
        idx = index[split]
        assert all(dm.classes[idx.labels[i]] == Path(idx.paths[i]).parent.name for i in range(0, len(idx), 37))
    assert not set(index["train"].paths) & set(index["val"].paths)
    again = ImageFolderDataModule(root=str(image_tree), **GRAY8, val_fraction=0.1).index()
    assert list(again["val"].paths) == list(index["val"].paths)  # seeded


def test_pixels_equal_the_in_memory_images(image_tree):
    """The folder path decodes exactly the pixels the built-in digits set holds (the same answer, at the source)."""
    dm = ImageFolderDataModule(root=str(image_tree), **GRAY8)
    dataset = dm.dataset("test")
    x, y, rows = _batch(dataset, list(range(12))).batch
    digits = load_digits()
    for image, label, row in zip(x, y, rows.tolist()):
        number = int(Path(dataset.paths[row]).stem)
        expected = torch.from_numpy((digits.images[number] * (255 / 16)).round().astype(np.uint8))
        assert torch.equal(image[0], expected) and label == digits.target[number]
    normalized, *_ = dm.on_after_batch_transfer((x, y, rows), 0)
    assert normalized.dtype == torch.float32 and torch.allclose(normalized, (x / 255.0 - 0.449) / 0.226)


def test_a_listing_reads_like_the_folders_and_names_bad_rows(tmp_path, image_tree):
    folders = ImageFolderDataModule(root=str(image_tree), **GRAY8)
    lines = ["path,label,split"]
    for split in ("train", "test"):
        idx = folders.index()[split] if split == "test" else None
        for p in sorted((image_tree / split).rglob("*.png")):
            lines.append(f"{p.relative_to(image_tree)},{p.parent.name},{split}")
    (image_tree / "listing.csv").write_text("\n".join(lines) + "\n")
    listed = ImageFolderDataModule(listing=str(image_tree / "listing.csv"), **GRAY8)
    assert listed.classes == folders.classes
    assert [Path(p).name for p in listed.index()["test"].paths] == [Path(p).name for p in idx.paths]
    assert np.array_equal(listed.index()["test"].labels, idx.labels)
    for body, message in (
        ("path,label\na.png,x\nb.png\n", "line 3: expected 2 fields"),
        ("path,label\na.png,x\n,y\n", "line 3: no path"),
        ("path,label,split\na.png,x,train\nb.png,y,dev\n", "line 3: split 'dev' is not train, val or test"),
        ("path,label\na.png,x\nnotes.txt,y\n", "line 3: notes.txt is not a"),
        ("file,class\na.png,x\n", "has no column path"),
    ):
        (tmp_path / "bad.csv").write_text(body)
        with pytest.raises(RecipeError, match=message):
            ImageFolderDataModule(listing=str(tmp_path / "bad.csv"), **GRAY8).index()


def test_bad_trees_are_one_line_each(tmp_path):
    root = write_image_tree(tmp_path / "tree", limit=60)
    (root / "val" / "d3").mkdir(parents=True)
    shutil.copy(next((root / "train" / "d3").iterdir()), root / "val" / "d3" / "x.png")
    (root / "val" / "cat").mkdir()
    shutil.copy(next((root / "train" / "d3").iterdir()), root / "val" / "cat" / "y.png")
    with pytest.raises(RecipeError, match="val images of class 'cat'.*which the training images lack"):
        ImageFolderDataModule(root=str(root), **GRAY8).index()
    shutil.rmtree(root / "val" / "cat")
    (root / "train" / "empty").mkdir()
    with pytest.raises(RecipeError, match="class folder .*empty holds no images"):
        ImageFolderDataModule(root=str(root), **GRAY8).index()
    (root / "train" / "empty").rmdir()
    (root / "train" / "loose.png").write_bytes(b"")
    with pytest.raises(RecipeError, match="holds files outside class folders"):
        ImageFolderDataModule(root=str(root), **GRAY8).index()
    with pytest.raises(RecipeError, match="either data.root .* or data.listing"):
        ImageFolderDataModule(**GRAY8)
    with pytest.raises(RecipeError, match="has no train/ folder"):
        ImageFolderDataModule(root=str(root / "val"), **GRAY8).index()


def test_the_listing_is_cached_and_a_changed_folder_is_read_again(tmp_path, monkeypatch):
    root = write_image_tree(tmp_path / "tree", limit=100)
    settings = {**GRAY8, "cache_dir": str(tmp_path / "cache")}
    first = ImageFolderDataModule(root=str(root), **settings).index()
    real = folder_index._list_tree
    monkeypatch.setattr(folder_index, "_list_tree", lambda d: pytest.fail(f"{d} was walked again"))
    cached = ImageFolderDataModule(root=str(root), **settings).index()
    assert list(cached["train"].paths) == list(first["train"].paths)
    monkeypatch.setattr(folder_index, "_list_tree", real)
    extra = root / "train" / "d1" / "9999.png"
    shutil.copy(next((root / "train" / "d1").iterdir()), extra)
    grown = ImageFolderDataModule(root=str(root), **settings, val_fraction=0.0, test_fraction=0.0).index()
    assert str(extra) in set(grown["train"].paths)


def test_batches_are_the_same_with_any_number_of_workers(image_tree):
    """Random crops and flips come from each batch's seed: two worker processes give the batches one process does."""
    dm = ImageFolderDataModule(root=str(image_tree), image_size=8, channels=1, augment=True, cache_dir=None)
    epochs = {}
    for workers in (0, 2):
        dm.num_workers = workers
        loader = dm.train_dataloader()
        epochs[workers] = [tuple(t.clone() for t in batch) for batch in loader]
    assert len(epochs[0]) == len(epochs[2]) > 3
    for a, b in zip(epochs[0], epochs[2]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    plain = _batch(dm.dataset("train", train=False), epochs[0][0][2].tolist()).batch[0]
    assert not torch.equal(plain, epochs[0][0][0])  # the training batch was augmented


def test_an_undecodable_image_is_skipped_counted_and_a_flood_stops_the_run(tmp_path, caplog):
    root = write_image_tree(tmp_path / "tree", limit=400)
    broken = sorted((root / "train" / "d2").iterdir())[0]
    broken.write_bytes(b"\x89PNG not really")
    args = [
        "--config",
        str(CONFIGS / "image_folder.yaml"),
        *QUIET,
        "--data.root",
        str(root),
        "--model.net",
        "cnn",
        "--model.net_kwargs",
        "{widths: [8, 16]}",
        *sum(([f"--data.{k}", str(v)] for k, v in {**GRAY8, "cache_dir": "null"}.items()), []),
        "--data.num_workers",
        "0",
        "--data.batch_size",
        "32",
        "--trainer.max_epochs",
        "1",
    ]
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert main(["fit", *args, "--trainer.default_root_dir", str(run), "--data.max_bad_fraction", "0.01"]) == 0
    assert f"skipped {broken}: cannot decode" in caplog.text
    assert last_metrics(run)["train/bad_items"] == 1.0 and last_metrics(run)["val/bad_items"] == 0.0
    for path in sorted((root / "train" / "d5").iterdir())[:6]:
        path.write_bytes(b"")
    assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "run2")]) == 2  # 7 > 0.1% of 260


def test_library_networks_by_name():
    tv = build_image_net("torchvision:resnet18", in_channels=1, num_classes=7, image_size=32)
    assert tv.head_name == "net.fc" and tv(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    timm = build_image_net("timm:resnet10t", in_channels=3, num_classes=5, image_size=32)
    assert timm.head_name == "net.fc" and timm(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(RecipeError, match="torchvision has no classification model 'resnet5'"):
        build_image_net("torchvision:resnet5", 3, 2, 32)
    with pytest.raises(RecipeError, match="unknown image network 'resnet50'.*torchvision:<name>"):
        build_image_net("resnet50", 3, 2, 32)
