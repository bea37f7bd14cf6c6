"""An example submission that is not a plain optimizer: AdamW whose evaluations see an EMA of the weights.

    submissions:
      - label: adamw_ema
        submission: recipes.benchmark.ema_submission.AdamWEMA
        search_space: {learning_rate: {min: 1e-3, max: 0.1, scaling: log}, ema_decay: {feasible_points: [0.9, 0.99]}}

The average is updated after every training step and swapped in for each evaluation, both on the clock
(AlgoPerf charges ``prepare_for_eval``). The average starts at the first step's weights; its t-th update
(t = 1, 2, ...) uses the warm-up decay ``min(decay, (1 + t) / (10 + t))`` (TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``), so the first evaluations are not pulled toward early
weights. Only trainable parameters are averaged; buffers (batch-norm statistics) are the live ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from recipes.benchmark.submission import FactorySubmission
from recipes.modules.errors import ConfigError

if TYPE_CHECKING:
    import lightning as L

__all__ = ["AdamWEMA"]


class AdamWEMA(FactorySubmission):
    """AdamW (any factory settings in ``optimizer``) plus an exponential moving average used for evaluation.

    Args:
        ema_decay: the average's decay per step, in (0, 1).
        optimizer: ``OptimizerConfig`` keys; the name defaults to adamw.
        scheduler: ``SchedulerConfig`` keys; None keeps the task config's schedule.
        **hyperparameters: the trial's point, as for ``FactorySubmission``.
    """

    def __init__(
        self,
        ema_decay: float = 0.99,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        if not 0.0 < ema_decay < 1.0:
            raise ConfigError(f"ema_decay {ema_decay} is not in (0, 1)", "sample it from inside (0, 1)")
        super().__init__({"name": "adamw", **(optimizer or {})}, scheduler, **hyperparameters)
        self.ema_decay = ema_decay
        self._ema: list[torch.Tensor] | None = None
        self._live: list[torch.Tensor] | None = None
        self._updates = 0

    @staticmethod
    def _params(module: "L.LightningModule") -> list[torch.Tensor]:
        return [p.detach() for p in module.parameters() if p.requires_grad]

    @torch.no_grad()
    def on_train_step_end(self, module: "L.LightningModule") -> None:
        params = self._params(module)
        if self._ema is None:
            self._ema = [p.clone() for p in params]
        else:
            decay = min(self.ema_decay, (1 + self._updates) / (10 + self._updates))
            torch._foreach_lerp_(self._ema, params, 1.0 - decay)
        self._updates += 1

    @torch.no_grad()
    def prepare_for_eval(self, module: "L.LightningModule") -> None:
        if self._ema is None:
            return
        params = self._params(module)
        self._live = [p.clone() for p in params]
        torch._foreach_copy_(params, self._ema)

    @torch.no_grad()
    def after_eval(self, module: "L.LightningModule") -> None:
        if self._live is not None:
            torch._foreach_copy_(self._params(module), self._live)
            self._live = None
