"""Samples per second: the in-memory index batching against a default DataLoader over a TensorDataset.

    python benchmarks/data_path.py

One shuffled epoch of Fashion-MNIST's 55,000 training images (uint8, in memory) at several batch sizes.
"""

from __future__ import annotations

import time

from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import print_table
from recipes.data.batching import batch_loader
from recipes.data.image.datamodule import FashionMNISTDataModule


def _samples_per_s(loader) -> float:
    start = time.perf_counter()
    n = sum(batch[0].shape[0] for batch in loader)
    return n / (time.perf_counter() - start)


def main() -> None:
    dm = FashionMNISTDataModule(download=False)
    dm.setup("fit")
    dataset = dm.splits["train"]
    rows = []
    for batch_size in (64, 128, 256):
        ours = max(_samples_per_s(batch_loader(dataset, batch_size, shuffle=True)) for _ in range(3))
        default = max(
            _samples_per_s(DataLoader(TensorDataset(*dataset.tensors), batch_size=batch_size, shuffle=True))
            for _ in range(3)
        )
        rows.append([batch_size, f"{ours:,.0f}", f"{default:,.0f}", ours / default])
    print_table(
        "Data path, one epoch of 55,000 Fashion-MNIST images (best of 3)",
        ["batch size", "index batching samples/s", "default DataLoader samples/s", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
