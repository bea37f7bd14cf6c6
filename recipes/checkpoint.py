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

from recipes.modules.errors import ConfigError

__all__ = ["RecipeCheckpoint"]


class RecipeCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every save point (see the module docstring).

    Args:
        last_every_n_steps: also rewrite ``last.ckpt`` every this many optimizer steps (None: off).
        last_every_seconds: also rewrite ``last.ckpt`` when this much wall-clock time has passed since the
            previous save (None: off). Ranks agree through rank 0's clock.
        **kwargs: Lightning's ModelCheckpoint arguments (``monitor``, ``mode``, ``save_top_k``, ...).
    """

    def __init__(
        self, *args: Any, last_every_n_steps: int | None = None, last_every_seconds: float | None = 600.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if (last_every_n_steps is not None and last_every_n_steps < 1) or (
            last_every_seconds is not None and last_every_seconds <= 0
        ):
            raise ConfigError(
                "checkpoint.last_every_n_steps must be >= 1 and last_every_seconds > 0", "or null to turn either off"
            )
        self.last_every_n_steps, self.last_every_seconds = last_every_n_steps, last_every_seconds
        self._last_time = time.monotonic()
        self._stopped_mid_epoch = False  # max_steps ended the run mid-epoch: last.ckpt stays that step's state

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._last_time, self._stopped_mid_epoch = time.monotonic(), False

    def _should_skip_saving_checkpoint(self, trainer: L.Trainer) -> bool:
        # A checkpoint between two micro-batches of one optimizer step would lose the gradient accumulated so far.
        accumulating = trainer.state.fn == "fit" and trainer.fit_loop.epoch_loop._should_accumulate()
        return super()._should_skip_saving_checkpoint(trainer) or accumulating

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        # Lightning's on_train_end saves last.ckpt even under fast_dev_run, which is meant to write nothing: a smoke
        # test's one-step checkpoint would be what a later --ckpt_path last resumes.
        if trainer.fast_dev_run:
            return
        if not self._stopped_mid_epoch:  # after a max_steps stop mid-epoch, the epoch-end state must not replace it
            super()._save_last_checkpoint(trainer, monitor_candidates)

    def _save_mid_epoch(self, trainer: L.Trainer) -> None:
        """``last.ckpt`` between two steps of an epoch: always a file of its own (a ``save_last: link`` would point
        at an older top-k file), and the step is not marked as saved, so a validation, top-k or epoch-end save
        that follows at this same step still happens."""
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        mode, step, target = self.save_last, self._last_global_step_saved, self._last_checkpoint_saved
        self.save_last = True
        try:
            super()._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        finally:
            self.save_last, self._last_global_step_saved = mode, step
            if mode == "link":
                self._last_checkpoint_saved = target

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
        mid_epoch = not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        stopping = mid_epoch and 0 <= trainer.max_steps <= trainer.global_step
        if self._due(trainer) or stopping:
            self._save_mid_epoch(trainer)
        # Lightning counts an epoch cut short by max_steps as finished; a later run with a larger max_steps must
        # resume from this step's state, where the loaders know how far into the epoch they were.
        self._stopped_mid_epoch = stopping and self.save_last is not False

    def _refresh_last(self, trainer: L.Trainer) -> None:
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
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
