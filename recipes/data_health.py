"""Bad items counted in the epoch's metrics: for every loader whose dataset decodes files (images, audio), the
number of items that could not be read this epoch is logged as ``<stage>/bad_items`` (summed over processes).
The loader itself logs each one by name and stops the run past ``data.max_bad_fraction``
(``recipes.data.batching.ResumableLoader``)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from recipes.data.batching import ResumableLoader

__all__ = ["DataHealth"]


def _loaders(value: Any) -> list[ResumableLoader]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [
        loader
        for loader in items
        if isinstance(loader, ResumableLoader) and getattr(loader.dataset, "decodes_files", False)
    ]


class DataHealth(Callback):
    """Logs ``train/bad_items``, ``val/bad_items`` and ``test/bad_items`` at each epoch's end."""

    def _log(self, pl_module: L.LightningModule, loaders: Any, stage: str) -> None:
        found = _loaders(loaders)
        if not found:
            return
        count = torch.tensor(float(sum(loader.bad_items for loader in found)), device=pl_module.device)
        pl_module.log(f"{stage}/bad_items", count, reduce_fx="sum", sync_dist=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, trainer.train_dataloader, "train")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log(pl_module, trainer.val_dataloaders, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, trainer.test_dataloaders, "test")
