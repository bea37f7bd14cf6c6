"""Lightning callbacks that belong with the optimizer factory; task modules return them from
``configure_callbacks`` (see ``optimization_callbacks``) so no user has to list them."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, WeightAveraging
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.swa_utils import get_ema_multi_avg_fn

from recipes.modules.errors import TrainingDiverged
from recipes.modules.optim.composite import CompositeOptimizer
from recipes.modules.optim.groups import describe_groups

__all__ = ["ParamGroupLogger", "FiniteLossGuard", "OptimizerModeSwitch", "EMA", "optimization_callbacks"]


class ParamGroupLogger(Callback):
    """Prints each optimizer group (tensors, parameters, lr, weight decay) when fitting starts; a composite's
    groups are named ``<optimizer>/<group>`` under a title naming its parts."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for opt in trainer.optimizers:
            rows = describe_groups(opt.param_groups)
            title = repr(opt) if isinstance(opt, CompositeOptimizer) else type(opt).__name__
            lines = [f"{title} parameter groups:"]
            lines += [
                f"  {r['group']:<28} {r['tensors']:>4} tensors {r['params']:>12,} params  "
                f"lr {r['lr']:.3g}  wd {r['weight_decay']:g}"
                for r in rows
            ]
            rank_zero_info("\n".join(lines))


class FiniteLossGuard(Callback):
    """Stops fitting with a clear error when the training loss is NaN or infinite.

    Raising inside ``fit`` ends the run before another checkpoint is written, so the last good
    checkpoint on disk stays as it was.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            raise TrainingDiverged(trainer.global_step, float(loss.detach().float().mean()))


class OptimizerModeSwitch(Callback):
    """Puts optimizers that have train/eval modes (schedule-free ones) in the right mode.

    Train mode for training steps; eval mode (the averaged weights) for validation, test, predict,
    at the end of every training epoch (so epoch-end checkpoints hold the evaluation weights) and
    at the end of fitting.
    """

    @staticmethod
    def _switch(trainer: L.Trainer, mode: str) -> None:
        for opt in trainer.optimizers:
            fn = getattr(opt, mode, None)
            if callable(fn) and opt.param_groups[0].get("train_mode", mode == "eval") != (mode == "train"):
                fn()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._switch(trainer, "train")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._switch(trainer, "eval")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._switch(trainer, "eval")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._switch(trainer, "eval")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._switch(trainer, "eval")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._switch(trainer, "eval")


class EMA(WeightAveraging):
    """Exponential moving average of the weights, used for validation, test and the final model.

    Args:
        decay: EMA decay per update; 0.999 averages over roughly the last 1,000 steps.
        update_every: update the average every this many optimizer steps.
        start_step: first optimizer step at which the average starts to follow the weights.
    """

    def __init__(self, decay: float = 0.999, update_every: int = 1, start_step: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay, self.update_every, self.start_step = decay, update_every, start_step

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx >= self.start_step and step_idx % self.update_every == 0


def optimization_callbacks() -> list[Callback]:
    """The callbacks every task module adds through ``configure_callbacks``."""
    return [ParamGroupLogger(), FiniteLossGuard(), OptimizerModeSwitch()]
