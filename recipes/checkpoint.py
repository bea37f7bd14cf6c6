"""The ``checkpoint`` group's callback: Lightning's ModelCheckpoint with a ``last.ckpt`` that is really the last.

Since Lightning 2.6, ``save_last=True`` rewrites ``last.ckpt`` only at steps where a top-k checkpoint was
also saved, so once the monitored metric stops improving ``last.ckpt`` freezes at the best epoch and
``--ckpt_path last`` would resume from there. Here ``last.ckpt`` is written at every save point (each
validation, or each training epoch end when checkpoints are taken there) and when training ends.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["RecipeCheckpoint"]


class RecipeCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every save point (see the module docstring)."""

    def _refresh_last(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer) and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._refresh_last(trainer)
