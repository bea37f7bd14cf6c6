"""The task-module base: what every LightningModule of this package shares, so a task module is its network,
loss, metrics and steps.

``TaskModule`` owns the factory contract: the optimizer, schedule, initializer and fine-tuning settings rebuilt
as dataclasses and stored as plain hyperparameters, ``configure_optimizers`` through the shared factory (with
the backward pass its optimizers need), the callbacks every task adds (the parameter-group table, the
finite-loss guard, schedule-free optimizers' train/eval switch, a backbone's freeze window) and ``model.compile``.

A task module calls ``self.configure_training(...)`` first in its constructor with its own arguments, builds its
network, and ``self.initialize(net)``; it overrides ``fit_optimizer_config`` to adjust the optimizer settings
when fitting starts, and ``backbone_prefixes`` to name what a freeze window freezes.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import lightning as L
from torch import nn

from recipes.modules.compile import CompiledNet, check_compile
from recipes.modules.config import as_config, save_config_hparams
from recipes.modules.init import InitConfig, apply_init
from recipes.modules.optim import OptimizerConfig, SchedulerConfig, configure_optimization
from recipes.modules.optim.backward import FactoryBackward
from recipes.modules.optim.callbacks import optimization_callbacks
from recipes.modules.pretrained import FinetuneConfig

__all__ = ["TaskModule"]


class TaskModule(CompiledNet, FactoryBackward, L.LightningModule):
    """The base of every task module (see the module docstring)."""

    init_config: InitConfig | None = None
    finetune_config: FinetuneConfig | None = None
    # Class paths this class was written under before (checkpoints name their class): None where it is the
    # same class moved (its checkpoints load), else the fix for checkpoints of a class it replaced.
    supersedes: ClassVar[dict[str, str | None]] = {}

    def configure_training(
        self,
        optimizer: Any,
        scheduler: Any,
        compile: bool | dict[str, Any] = False,
        init: Any = None,
        finetune: Any = None,
        **more: Any,
    ) -> None:
        """Check and keep the training settings, and store the constructor's arguments as hyperparameters
        (the settings as plain dicts; ``more``: other dataclass settings of the task, by argument name)."""
        check_compile(compile)
        self.optimizer_config = as_config(OptimizerConfig, optimizer)
        self.scheduler_config = as_config(SchedulerConfig, scheduler)
        configs: dict[str, Any] = {"optimizer": self.optimizer_config, "scheduler": self.scheduler_config}
        if init is not None:
            self.init_config = configs["init"] = as_config(InitConfig, init)
        if finetune is not None:
            self.finetune_config = configs["finetune"] = as_config(FinetuneConfig, finetune)
        save_config_hparams(self, frame=inspect.currentframe().f_back, **configs, **more)

    def initialize(self, net: nn.Module) -> nn.Module:
        """Apply the configured initializer to ``net``'s freshly built layers (never to loaded weights)."""
        apply_init(net, self.init_config or InitConfig())
        return net

    def fit_optimizer_config(self) -> OptimizerConfig:
        """The optimizer settings this fit uses (the configured ones; a task may route some parameters)."""
        return self.optimizer_config

    def backbone_prefixes(self) -> list[str]:
        """The submodules a fine-tuning freeze window freezes (none by default)."""
        return []

    def configure_optimizers(self) -> Any:
        return configure_optimization(self, self.fit_optimizer_config(), self.scheduler_config)

    def configure_callbacks(self) -> list[L.Callback]:
        ft = self.finetune_config
        freeze = ft.freeze_callbacks(self.backbone_prefixes()) if ft and (ft.freeze_epochs or ft.freeze_steps) else []
        return [*optimization_callbacks(), *freeze]
