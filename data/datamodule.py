"""The DataModule base every task's data shares: one ``loader(split)`` for the four Lightning loaders.

A task's DataModule implements ``setup`` and ``loader(split)`` for ``train``, ``val``, ``test`` and
``predict``, and declares ``model_links``: its attributes that the CLI passes to the model's arguments
(``recipes/cli.py``), such as the number of classes, the vocabulary or the users and items.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import lightning as L

__all__ = ["Split", "TaskDataModule"]

Split = Literal["train", "val", "test", "predict"]


class TaskDataModule(L.LightningDataModule):
    """See the module docstring."""

    # This datamodule's attribute -> the model argument the CLI sets from it (when both exist).
    model_links: ClassVar[dict[str, str]] = {}

    def loader(self, split: Split) -> Any:
        """The loader of ``split``: shuffled and seeded for ``train``, in order for the others."""
        raise NotImplementedError

    @property
    def pin_memory(self) -> bool:
        """Pinned host memory when the batches go to a CUDA device."""
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> Any:
        return self.loader("train")

    def val_dataloader(self) -> Any:
        return self.loader("val")

    def test_dataloader(self) -> Any:
        return self.loader("test")

    def predict_dataloader(self) -> Any:
        return self.loader("predict")
