"""A callback that SIGKILLs its own process at a given training step (for the kill-and-resume tests)."""

from __future__ import annotations

import os
import signal

import lightning as L
from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """Kills the process (SIGKILL: no cleanup, no handler runs) once ``global_step`` reaches ``step``; with
    ``group``, its whole process group: every rank of a DDP job at once, as a scheduler's preemption does."""

    def __init__(self, step: int, group: bool = False) -> None:
        self.step, self.group = step, group

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step >= self.step and trainer.is_global_zero:
            if self.group:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
