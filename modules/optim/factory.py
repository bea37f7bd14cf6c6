"""The optimizer factory every task shares: a config in, parameter groups, an optimizer and a schedule out.

``OptimizerConfig`` is what users write under ``model.optimizer`` in YAML or on the command line
(``--model.optimizer.name sgd --model.optimizer.momentum 0.9``). ``create_optimizer`` builds the
optimizer for a model; ``configure_optimization`` is the one call a LightningModule's
``configure_optimizers`` makes.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from recipes.modules.errors import ConfigError, RecipeError
from recipes.modules.optim.groups import GroupRules, build_param_groups, to_torch_groups
from recipes.modules.optim.registry import get_optimizer_info
from recipes.modules.optim.schedules import SchedulerConfig, build_scheduler

if TYPE_CHECKING:
    import lightning as L

__all__ = [
    "OptimizerConfig",
    "create_optimizer",
    "configure_optimization",
    "fused_supported",
    "fused_clipping_conflict",
]

log = logging.getLogger(__name__)

Implementation = Literal["auto", "fused", "foreach", "for_loop"]


def rank_zero_info(message: str) -> None:
    """Lightning's rank-zero log line, imported when first used: importing the factory needs no Lightning."""
    from lightning.pytorch.utilities import rank_zero_info as info

    info(message)


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer and how the model's parameters are grouped for it.

    Args:
        name: a registered name (``python -m recipes list optimizers``) or a dotted path to an Optimizer class.
        lr: the peak learning rate (the schedule scales it).
        weight_decay: weight decay for ``ndim >= 2`` weights; decoupled for AdamW, an L2 penalty for Adam and SGD.
        betas: (beta1, beta2) for Adam-family optimizers; None keeps the optimizer's default.
        eps: the denominator's epsilon; None keeps the optimizer's default.
        momentum: momentum for SGD/RMSprop-style optimizers; None keeps the default.
        nesterov: Nesterov momentum for SGD; None keeps the default.
        implementation: auto picks torch's fused kernel when the optimizer and device support it, except in a
            run that clips gradients under mixed precision, which gets foreach (``fused_clipping_conflict``).
        kwargs: any other constructor argument of the optimizer, e.g. ``{amsgrad: true}``.
        decay_1d: also decay biases, normalization weights and other 1-D parameters.
        embedding_weight_decay: weight decay for embedding tables; None means weight_decay.
        lr_mult: submodule prefix -> lr multiplier, e.g. ``{backbone: 0.1}``.
        layer_decay: layer-wise lr decay factor in (0, 1]; None turns it off.
        layer_decay_root: dotted name of the stacked layers that layer_decay counts over.
    """

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] | None = None
    eps: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    implementation: Implementation = "auto"
    kwargs: dict[str, Any] = field(default_factory=dict)
    decay_1d: bool = False
    embedding_weight_decay: float | None = None
    lr_mult: dict[str, float] = field(default_factory=dict)
    layer_decay: float | None = None
    layer_decay_root: str | None = None

    def __post_init__(self) -> None:
        if not self.lr >= 0:  # also catches NaN
            raise ConfigError(
                f"learning rate must be >= 0, got {self.lr}", "set model.optimizer.lr to a positive number, e.g. 1e-3"
            )
        if self.weight_decay < 0 or (self.embedding_weight_decay or 0) < 0:
            raise ConfigError(
                f"weight decay must be >= 0, got {self.weight_decay}", "set model.optimizer.weight_decay >= 0"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(
                f"layer_decay must be in (0, 1], got {self.layer_decay}", "use e.g. 0.75, or null to turn it off"
            )
        if any(m < 0 for m in self.lr_mult.values()):
            raise ConfigError("lr_mult values must be >= 0", "fix model.optimizer.lr_mult")
        get_optimizer_info(self.name)  # fail at parse time, with the closest names

    @property
    def rules(self) -> GroupRules:
        return GroupRules(
            self.weight_decay,
            self.decay_1d,
            self.embedding_weight_decay,
            dict(self.lr_mult),
            self.layer_decay,
            self.layer_decay_root,
        )

    @property
    def schedule_free(self) -> bool:
        return get_optimizer_info(self.name).schedule_free


def fused_supported(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused optimizer kernels accept these parameters (floating point, a supported device)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = set(_get_fused_kernels_supported_devices())
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


def fused_clipping_conflict(trainer: "L.Trainer") -> str | None:
    """Why this run cannot clip a fused optimizer's gradients, or None.

    A fused optimizer (``_step_supports_amp_scaling``) unscales 16-bit gradients inside its own step, after
    Lightning clipped them. So Lightning's ``MixedPrecision`` plugin (``16-mixed`` and ``bf16-mixed``, with or
    without a GradScaler) refuses to clip for one, and a plugin with a GradScaler that does not refuse
    (``FSDPPrecision`` in ``16-mixed``) would clip the still-scaled gradients.
    """
    from lightning.pytorch.plugins.precision import MixedPrecision

    clip, plugin = trainer.gradient_clip_val, trainer.precision_plugin
    if not (clip and clip > 0):
        return None
    if isinstance(plugin, MixedPrecision):
        return (
            f"Lightning refuses to clip a fused optimizer's gradients under precision {plugin.precision} "
            f"(gradient_clip_val {clip:g})"
        )
    if getattr(plugin, "scaler", None) is not None:
        return (
            f"{type(plugin).__name__} would clip a fused optimizer's gradients before unscaling them "
            f"(gradient_clip_val {clip:g})"
        )
    return None


def _constructor_kwargs(
    cls: type, cfg: OptimizerConfig, params: list[torch.Tensor], fused_conflict: str | None = None
) -> dict[str, Any]:
    sig = inspect.signature(cls.__init__)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    named = {"betas": cfg.betas, "eps": cfg.eps, "momentum": cfg.momentum, "nesterov": cfg.nesterov}
    kwargs = {k: (tuple(v) if k == "betas" else v) for k, v in named.items() if v is not None}
    kwargs.update(cfg.kwargs)
    valid = [n for n in sig.parameters if n not in ("self", "params")]
    unknown = sorted(k for k in kwargs if k not in sig.parameters)
    if unknown and not accepts_any:
        raise ConfigError(
            f"optimizer {cfg.name!r} takes no argument {', '.join(unknown)}", f"its arguments are: {', '.join(valid)}"
        )
    if cfg.implementation != "auto" and not {"fused", "foreach"} & set(sig.parameters):
        raise ConfigError(
            f"optimizer {cfg.name!r} has no fused/foreach implementations", "set model.optimizer.implementation: auto"
        )
    user_chose = {"fused", "foreach"} & set(kwargs)  # kwargs: {foreach: true} is the user's choice, kept as is
    if cfg.implementation == "fused" or (cfg.implementation == "auto" and "fused" in sig.parameters and not user_chose):
        if cfg.implementation == "fused" and "fused" not in sig.parameters:
            raise ConfigError(
                f"optimizer {cfg.name!r} has no fused implementation", "use implementation auto or foreach"
            )
        if cfg.implementation == "fused" and fused_conflict:
            raise ConfigError(
                f"implementation fused does not work in this run: {fused_conflict}",
                "set model.optimizer.implementation: auto (it picks foreach), or trainer.gradient_clip_val: null",
            )
        if fused_supported(params) and not kwargs.get("differentiable", False):
            if not fused_conflict:
                kwargs["fused"] = True
            else:
                if "foreach" in sig.parameters:
                    kwargs["foreach"] = True
                chosen = "foreach" if kwargs.get("foreach") else "default"
                rank_zero_info(f"{cls.__name__}: {chosen} implementation, not fused: {fused_conflict}")
        elif cfg.implementation == "fused":
            raise ConfigError(
                "fused kernels do not support these parameters' device or dtype", "use implementation auto"
            )
    elif cfg.implementation == "foreach":
        kwargs["foreach"] = True
    elif cfg.implementation == "for_loop":
        kwargs.update({k: False for k in ("foreach", "fused") if k in sig.parameters})
    if kwargs.get("fused") and fused_conflict:  # kwargs: {fused: true}, the user's own choice
        raise ConfigError(
            f"model.optimizer.kwargs fused: true does not work in this run: {fused_conflict}",
            "drop it (implementation auto picks foreach), or set trainer.gradient_clip_val: null",
        )
    return kwargs


def create_optimizer(
    model: nn.Module, cfg: OptimizerConfig, lr_scale: float = 1.0, fused_conflict: str | None = None
) -> torch.optim.Optimizer:
    """Build ``cfg``'s optimizer over ``model``'s trainable parameters, grouped by ``cfg``'s rules.

    ``fused_conflict`` says why fused kernels cannot be used in this run (see ``fused_clipping_conflict``):
    implementation auto then picks foreach, and an explicit fused is an error.
    """
    info = get_optimizer_info(cfg.name)
    cls = info.cls
    groups = to_torch_groups(build_param_groups(model, cfg.rules), cfg.lr * lr_scale)
    if not groups:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters", "unfreeze some parameters")
    params = [p for g in groups for p in g["params"]]
    kwargs = _constructor_kwargs(cls, cfg, params, fused_conflict)
    if "weight_decay" not in inspect.signature(cls.__init__).parameters:
        if any(g["weight_decay"] for g in groups):
            raise ConfigError(f"optimizer {cfg.name!r} has no weight decay", "set model.optimizer.weight_decay: 0")
        for g in groups:
            del g["weight_decay"]
    try:
        return cls(groups, lr=cfg.lr * lr_scale, **kwargs)
    except RecipeError:  # already one line with its fix
        raise
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"optimizer {cfg.name!r} rejected its settings: {exc}", "fix model.optimizer") from None


def _unsharded(module: "L.LightningModule") -> contextlib.AbstractContextManager:
    """Where ``module``'s parameters have their own shapes while the optimizer is built.

    Under FSDP (``use_orig_params``, Lightning's default, keeps one tensor per parameter so the groups can be
    per parameter) a parameter is a 1-D view of this rank's shard outside forward and backward, and the
    ``ndim <= 1`` rule would exempt every weight from decay. ``summon_full_params`` gathers the whole model on
    each rank for that moment (the same tensors, full shapes), which a fine-tune's model affords.
    """
    if not torch.distributed.is_available():
        return contextlib.nullcontext()
    from torch.distributed.fsdp import FullyShardedDataParallel

    root = module.trainer.strategy.model
    if isinstance(root, FullyShardedDataParallel):
        return FullyShardedDataParallel.summon_full_params(root, writeback=False)
    return contextlib.nullcontext()


def configure_optimization(
    module: "L.LightningModule", optimizer: OptimizerConfig, scheduler: SchedulerConfig
) -> dict[str, Any]:
    """What a LightningModule's ``configure_optimizers`` returns: the optimizer and a per-step schedule.

    The number of steps comes from the Trainer, and so does whether fused kernels may be used (not where
    it clips gradients under mixed precision: ``fused_clipping_conflict``). Schedule-free optimizers get no
    scheduler: their own ``warmup_steps`` argument takes the configured warmup, and a decay shape is
    reported, not dropped.
    """
    opt_cfg = optimizer
    total = int(module.trainer.estimated_stepping_batches)
    if opt_cfg.schedule_free and scheduler.name != "none":
        warmup = scheduler.warmup(total)
        if warmup and "warmup_steps" not in opt_cfg.kwargs:
            opt_cfg = _with_kwargs(opt_cfg, warmup_steps=warmup)
        log.warning(
            "%s is schedule-free: the %r schedule is not applied; %d warmup steps go to the optimizer itself",
            opt_cfg.name,
            scheduler.name,
            warmup,
        )
        scheduler = SchedulerConfig(name="none")
    with _unsharded(module):
        opt = create_optimizer(module, opt_cfg, fused_conflict=fused_clipping_conflict(module.trainer))
    sched = build_scheduler(opt, scheduler, total)
    if sched is None:
        return {"optimizer": opt}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


def _with_kwargs(cfg: OptimizerConfig, **extra: Any) -> OptimizerConfig:
    return replace(cfg, kwargs={**cfg.kwargs, **extra})
