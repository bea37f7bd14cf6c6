"""The ``checkpoint`` group's callback: Lightning's ModelCheckpoint with a ``last.ckpt`` that is really the last.

Since Lightning 2.6, ``save_last=True`` rewrites ``last.ckpt`` only at steps where a top-k checkpoint was
also saved, so once the monitored metric stops improving ``last.ckpt`` freezes at the best epoch and
``--ckpt_path last`` would resume from there. Here ``last.ckpt`` is written at every save point (each
validation, or each training epoch end when checkpoints are taken there), when training ends, and
mid-epoch every ``last_every_n_steps`` optimizer steps or ``last_every_seconds`` of training, so a killed
run loses at most that much work. Every file is written beside its name and renamed into place: a kill
during a write leaves the previous checkpoint intact, never a truncated one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from modules.errors import ConfigError

__all__ = ["RecipeCheckpoint"]


class RecipeCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every save point (see the module docstring).

    Args:
        last_every_n_steps: also rewrite ``last.ckpt`` every this many optimizer steps (None: off).
        last_every_seconds: also rewrite ``last.ckpt`` when this much wall-clock time has passed since the
            previous save (None: off). Ranks agree through rank 0's clock.
        **kwargs: Lightning's ModelCheckpoint arguments (``monitor``, ``mode``, ``save_top_k``, ...).
    """

    def __init__(self, *args: Any, last_every_n_steps: int | None = None, last_every_seconds: float | None = 600.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if (last_every_n_steps is not None and last_every_n_steps < 1) or (last_every_seconds is not None and last_every_seconds <= 0):
            raise ConfigError("checkpoint.last_every_n_steps must be >= 1 and last_every_seconds > 0", "or null to turn either off")
        self.last_every_n_steps, self.last_every_seconds = last_every_n_steps, last_every_seconds
        self._last_time = time.monotonic()

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        partial = os.path.join(os.path.dirname(filepath), f".{os.path.basename(filepath)}.partial")
        super()._save_checkpoint(trainer, partial)
        if trainer.is_global_zero and os.path.isfile(partial):
            os.replace(partial, filepath)
        trainer.strategy.barrier("RecipeCheckpoint.rename")
        self._last_checkpoint_saved = filepath
        self._last_time = time.monotonic()

    def _due(self, trainer: L.Trainer) -> bool:
        by_steps = bool(self.last_every_n_steps) and trainer.global_step % self.last_every_n_steps == 0
        by_time = self.last_every_seconds is not None and time.monotonic() - self._last_time >= self.last_every_seconds
        if self.last_every_seconds is not None:
            by_time = bool(trainer.strategy.broadcast(by_time))  # one clock decides, so every rank saves together
        return by_steps or by_time

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if trainer.fit_loop.epoch_loop._should_accumulate() or not self._due(trainer):
            return
        self._refresh_last(trainer)

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
