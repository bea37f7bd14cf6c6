"""The distributed strategy a recipe runs under, when the model's training steps may leave parameters unused.

DDP all-reduces every gradient of the parameters that required one when it wrapped the model, and by default
stops with a RuntimeError at the first step in which one of them got none. A freeze schedule
(``model.finetune.freeze_epochs``/``freeze_steps``, ``recipes.modules.pretrained.FreezeBackbone``) freezes after the
wrapping, and some nets skip a submodule in some steps; ``find_unused_parameters=True`` lets DDP find those
parameters in each step's graph (a small cost per step) while still all-reducing them in the steps that use
them, so the ranks stay equal after an unfreeze. ``ddp_strategy_for`` picks Lightning's registered
``<name>_find_unused_parameters_true`` variant of a plain ``ddp``-family name for such a model and says why;
any other strategy, a strategy object and an explicit ``..._find_unused_parameters_false`` are kept as given.

A LightningModule declares it with a ``may_skip_parameters`` attribute: True, a sentence saying why, or False
to turn the rule off. A module that holds a ``recipes.modules.pretrained.FinetuneConfig`` with a freeze window
declares it by holding it.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.strategies import StrategyRegistry
from lightning.pytorch.utilities import rank_zero_info

from recipes.modules.pretrained import FinetuneConfig

__all__ = ["skipped_parameters_reason", "ddp_strategy_for"]


def skipped_parameters_reason(model: L.LightningModule) -> str | None:
    """Why some trainable parameters of ``model`` may get no gradient in a training step, or None."""
    declared = getattr(model, "may_skip_parameters", None)
    if declared is not None:
        if not declared:
            return None
        return declared if isinstance(declared, str) else f"{type(model).__name__}.may_skip_parameters is set"
    for value in vars(model).values():
        if isinstance(value, FinetuneConfig) and (value.freeze_epochs or value.freeze_steps):
            window = (
                f"freeze_epochs {value.freeze_epochs}" if value.freeze_epochs else f"freeze_steps {value.freeze_steps}"
            )
            return f"model.finetune.{window} freezes the backbone after DDP has wrapped the model"
    return None


def ddp_strategy_for(model: L.LightningModule, strategy: Any) -> Any:
    """``strategy``, or its ``_find_unused_parameters_true`` variant when it is a plain DDP name and ``model``
    may leave parameters unused (logged in one line)."""
    variant = f"{strategy}_find_unused_parameters_true" if isinstance(strategy, str) else None
    if variant is None or "find_unused" in strategy or variant not in StrategyRegistry:
        return strategy
    reason = skipped_parameters_reason(model)
    if reason is None:
        return strategy
    rank_zero_info(f"strategy {strategy} -> {variant}: {reason}, so DDP must allow parameters without a gradient")
    return variant
