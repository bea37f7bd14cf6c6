"""The optimizer factory every task shares: a config in, parameter groups, an optimizer and a schedule out.

``OptimizerConfig`` (``settings.py``) is what users write under ``model.optimizer`` in YAML or on the command
line (``--model.optimizer.name sgd --model.optimizer.momentum 0.9``). ``create_optimizer`` builds the
optimizer for a model: one optimizer, or a ``CompositeOptimizer`` when parameters are routed to a fallback
or a switch is set; ``configure_optimization`` is the one call a LightningModule's ``configure_optimizers``
makes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from recipes.modules.errors import ConfigError, RecipeError
from recipes.modules.optim.backward import FactoryBackward
from recipes.modules.optim.composite import CompositeOptimizer, Part, matrix_views
from recipes.modules.optim.constructor import (
    constructor_kwargs,
    fused_clipping_conflict,
    has_argument,
    rank_zero_info,
)
from recipes.modules.optim.groups import build_param_groups, to_torch_groups
from recipes.modules.optim.registry import OptimizerInfo, get_optimizer_info
from recipes.modules.optim.routing import ParameterSubset, route_parameters
from recipes.modules.optim.schedules import SchedulerConfig, build_scheduler
from recipes.modules.optim.settings import DEFAULT_WEIGHT_DECAY, OptimizerConfig, OptimizerSettings

if TYPE_CHECKING:
    import lightning as L

__all__ = ["RunFacts", "OptimizerConfig", "create_optimizer", "configure_optimization", "resolve_weight_decay"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFacts:
    """What the run knows that some settings and constructors need (None: not known here).

    Args:
        total_steps: optimizer steps of the whole run (``trainer.estimated_stepping_batches``).
        batch_size: training samples per optimizer step, over all devices and accumulated batches.
        train_size: training samples in the training set.
    """

    total_steps: int | None = None
    batch_size: int | None = None
    train_size: int | None = None

    def need(self, key: str, why: str) -> int:
        value = getattr(self, key)
        if value is None:
            raise ConfigError(f"{why} needs the run's {key}, which is not known here", "build it inside a fit")
        return value


def resolve_weight_decay(cfg: OptimizerSettings, cls: type, facts: RunFacts) -> float:
    """The weight decay ``cfg`` means for optimizer class ``cls`` in this run.

    ``weight_decay_norm`` is Loshchilov and Hutter's normalized weight decay: ``lambda = lambda_norm *
    sqrt(b / (B * T))`` with b the batch size, B the training-set size and T the epochs (so ``b / (B * T)`` is
    one over the number of optimizer steps). Unset, an optimizer with weight decay gets 0.01 and one without
    gets none.
    """
    if cfg.weight_decay_norm is not None:
        why = f"{cfg.name}'s weight_decay_norm"
        b, size = facts.need("batch_size", why), facts.need("train_size", why)
        epochs = facts.need("total_steps", why) * b / size
        value = cfg.weight_decay_norm * math.sqrt(b / (size * epochs))
        rank_zero_info(
            f"{cfg.name}: normalized weight decay {cfg.weight_decay_norm:g} * sqrt(b / (B * T)) = {value:.6g} "
            f"(b {b} samples per step, B {size} training samples, T {epochs:.4g} epochs)"
        )
        return value
    if cfg.weight_decay is not None:
        return cfg.weight_decay
    return DEFAULT_WEIGHT_DECAY if has_argument(cls, "weight_decay") else 0.0


def _groups(
    model: nn.Module, cfg: OptimizerConfig, settings: OptimizerSettings, lr_scale: float, facts: RunFacts
) -> list[dict]:
    """Torch param groups of ``model`` for ``settings``' optimizer, by ``cfg``'s grouping rules."""
    info = get_optimizer_info(settings.name)
    cls = info.cls
    groups = to_torch_groups(
        build_param_groups(model, cfg.rules(resolve_weight_decay(settings, cls, facts))), settings.lr * lr_scale
    )
    if info.group_by_shape:  # its collectives gather same-shaped tensors
        groups = [
            {
                **g,
                "params": [p for p in g["params"] if p.shape == shape],
                "name": f"{g['name']}/{'x'.join(map(str, shape))}",
            }
            for g in groups
            for shape in dict.fromkeys(p.shape for p in g["params"])
        ]
    if not has_argument(cls, "weight_decay"):
        if any(g["weight_decay"] for g in groups):
            raise ConfigError(
                f"optimizer {settings.name!r} has no weight decay", "set its weight_decay: 0 (or leave it unset)"
            )
        for g in groups:
            del g["weight_decay"]
    return groups


def _instantiate(
    info: OptimizerInfo,
    settings: OptimizerSettings,
    groups: list[dict],
    model: nn.Module,
    lr_scale: float,
    fused_conflict: str | None,
    facts: RunFacts,
) -> torch.optim.Optimizer:
    """``info``'s optimizer over ``groups``, with the arguments ``settings`` names and those the run fills."""
    cls = info.cls
    params = [p for g in groups for p in g["params"]]
    if info.sparse_only:
        _check_sparse(settings.name, model, params)
    if info.contiguous_only and not all(p.is_contiguous() for p in params):
        raise ConfigError(
            f"optimizer {settings.name!r} reshapes each parameter with .view, which the model's channels-last "
            "(non-contiguous) weights do not allow",
            "set model.channels_last false for it, or choose another optimizer (e.g. adamw, or muon with a fallback)",
        )
    kwargs = constructor_kwargs(cls, settings, params, fused_conflict)
    for arg, fact in info.fills:
        kwargs.setdefault(arg, facts.need(fact, f"optimizer {settings.name!r}"))
    for arg, value in info.presets:
        kwargs.setdefault(arg, value)
    if info.distributed_only and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ConfigError(
            f"{settings.name} splits its work over the processes of a distributed run, and this run has one",
            "use it with trainer.devices > 1 (ddp), or muon on one device",
        )
    for g in groups:
        g.update(dict(info.group_flags))
        if info.lr_arg != "lr":
            g[info.lr_arg] = g["lr"]
    first = groups
    if info.takes_model:  # it groups the model itself: the resolved decay becomes its argument
        first = model
        if has_argument(cls, "weight_decay"):
            kwargs.setdefault("weight_decay", max(g.get("weight_decay", 0.0) for g in groups))
    try:
        return cls(first, **{info.lr_arg: settings.lr * lr_scale}, **kwargs)
    except RecipeError:  # already one line with its fix
        raise
    except (ValueError, TypeError, RuntimeError, AssertionError) as exc:
        raise ConfigError(f"optimizer {settings.name!r} rejected its settings: {exc}", "fix model.optimizer") from None


def _check_sparse(name: str, model: nn.Module, params: list[torch.Tensor]) -> None:
    sparse = {id(m.weight) for _, m in model.named_modules() if getattr(m, "sparse", False)}
    dense = sum(id(p) not in sparse for p in params)
    if dense:
        raise ConfigError(
            f"{name} takes sparse gradients only, and {dense} of its {len(params)} parameters get dense ones",
            "use it for embedding tables built with sparse=True (model.sparse_embeddings: true, "
            "model.embedding_optimizer: {name: " + name + "}), and e.g. adamw for the model",
        )


def _plan(model: nn.Module, cfg: OptimizerConfig) -> list[tuple[str, OptimizerSettings, set[str]]]:
    """(part, settings, parameter names) for each part that routing gives parameters."""
    info = get_optimizer_info(cfg.name)
    fallback = cfg.fallback
    if fallback is None and info.matrices_only:
        fallback = OptimizerSettings()
        rank_zero_info(
            f"{cfg.name} takes hidden matrices only: the other parameters go to the default fallback, AdamW "
            f"(lr {fallback.lr:g}); set model.optimizer.fallback to choose"
        )
    if fallback is None and not cfg.route:
        return [("main", cfg, {n for n, p in model.named_parameters() if p.requires_grad})]
    if fallback is None:
        fallback = OptimizerSettings()
    routes = route_parameters(model, cfg.route)
    plan = [
        (part, s, {n for n, r in routes.items() if r == part}) for part, s in (("main", cfg), ("fallback", fallback))
    ]
    if info.matrices_only:
        shapes = dict(model.named_parameters())
        flat = sorted(n for n in plan[0][2] if shapes[n].ndim < 2)
        if flat:
            raise ConfigError(
                f"{cfg.name} takes matrices only, but route sends it {flat[:3]}",
                "route parameters of fewer than two dimensions to the fallback",
            )
    return [(part, s, names) for part, s, names in plan if names]


def _check_part(info: OptimizerInfo) -> None:
    """Refuses an optimizer that cannot be one part of a composite."""
    for flag, why in [
        ("schedule_free", "switches between train and eval weights"),
        ("takes_model", "takes the whole model"),
        ("closure", "re-evaluates the loss inside its step"),
    ]:
        if getattr(info, flag):
            raise ConfigError(
                f"{info.name} cannot be one part of a composite optimizer: it {why}",
                "use it on its own, without fallback, route or switch",
            )


def create_optimizer(
    model: nn.Module,
    cfg: OptimizerConfig,
    lr_scale: float = 1.0,
    fused_conflict: str | None = None,
    facts: RunFacts = RunFacts(),
) -> torch.optim.Optimizer:
    """Build ``cfg``'s optimizer over ``model``'s trainable parameters, grouped by ``cfg``'s rules.

    ``fused_conflict`` says why fused kernels cannot be used in this run (see ``fused_clipping_conflict``):
    implementation auto then picks foreach, and an explicit fused is an error. ``facts`` carries what the run
    knows (steps, batch size, training-set size) for normalized weight decay and constructors that need it.
    """
    plan = _plan(model, cfg)
    if not plan:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters", "unfreeze some parameters")
    composite = len(plan) > 1 or plan[0][0] != "main" or cfg.switch is not None
    if not composite:
        info = get_optimizer_info(cfg.name)
        rules = cfg.grouping()
        if info.takes_model and any(v for v in rules.values()):
            raise ConfigError(
                f"{cfg.name} groups the model's parameters itself, so {', '.join(k for k, v in rules.items() if v)}"
                " cannot apply",
                "drop those settings, or choose an optimizer that takes parameter groups",
            )
        groups = _groups(model, cfg, cfg, lr_scale, facts)
        return _instantiate(info, cfg, groups, model, lr_scale, fused_conflict, facts)
    outer: list[dict] = []
    parts: list[Part] = []
    stop = None if cfg.switch is None else cfg.switch.step(facts)
    for part, settings, names in plan:
        info = get_optimizer_info(settings.name)
        _check_part(info)
        subset = ParameterSubset(model, names)
        groups = _groups(subset, cfg, settings, lr_scale, facts)
        views = matrix_views([p for g in groups for p in g["params"]]) if info.exact_2d else {}
        anchors = list(range(len(outer), len(outer) + len(groups)))
        outer += [{**g, "name": f"{info.name}/{g['name']}"} for g in groups]
        inner = [{**g, "params": [views.get(p, p) for p in g["params"]]} for g in groups]
        opt = _instantiate(info, settings, inner, subset, lr_scale, fused_conflict, facts)
        parts.append(Part(part, opt, anchors, stop=stop, views=views))
    if cfg.switch is not None:
        info = get_optimizer_info(cfg.switch.name)
        _check_part(info)
        groups = _groups(model, cfg, cfg.switch, lr_scale, facts)
        anchor = next((i for i, g in enumerate(outer) if g["lr"]), 0)
        opt = _instantiate(info, cfg.switch, groups, model, lr_scale, fused_conflict, facts)
        parts.append(Part("switch", opt, [anchor] * len(groups), start=stop))
    return CompositeOptimizer(outer, parts)


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


def run_facts(trainer: "L.Trainer") -> RunFacts:
    """Steps, samples per step and training-set size, from the Trainer and its training DataLoader."""
    total = int(trainer.estimated_stepping_batches)
    if trainer.train_dataloader is None:  # a max_steps run: Lightning counted its steps without the data
        trainer.fit_loop.setup_data()  # what estimated_stepping_batches does otherwise; the fit loop reuses it
    loader = trainer.train_dataloader
    dataset = getattr(loader, "dataset", None)
    try:
        size = len(dataset) if dataset is not None else None
    except TypeError:  # an iterable dataset
        size = None
    # a DataLoader's own batch size, or its (batch) sampler's: recipes' loaders batch in a sampler
    per_device = next(
        (
            b
            for b in (
                getattr(x, "batch_size", None)
                for x in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None))
            )
            if b
        ),
        None,
    )
    batch = None
    if per_device:
        batch = per_device * trainer.world_size * trainer.accumulate_grad_batches
    elif size and math.isfinite(trainer.num_training_batches):  # a batch sampler: samples per step on average
        steps_per_epoch = max(1, trainer.num_training_batches // trainer.accumulate_grad_batches)
        batch = max(1, round(size / steps_per_epoch))
    return RunFacts(total, batch, size)


def _refuse_sharded(module: "L.LightningModule", optimizer: torch.optim.Optimizer) -> None:
    from lightning.pytorch.strategies import FSDPStrategy

    if isinstance(module.trainer.strategy, FSDPStrategy) and isinstance(optimizer, CompositeOptimizer):
        raise ConfigError(
            "FSDP shards parameters and their optimizer state in its own layout, which a composite optimizer "
            "(fallback, route or switch) does not have",
            "use trainer.strategy ddp, or one optimizer without fallback and switch",
        )


def _keep_graph(module: "L.LightningModule", cfg: OptimizerConfig) -> None:
    """Sets ``module.create_graph`` for an optimizer that reads Hessian-vector products from the gradients."""
    names = [cfg.name] + [s.name for s in (cfg.fallback, cfg.switch) if s is not None]
    needs = [n for n in names if get_optimizer_info(n).create_graph]
    if needs and not isinstance(module, FactoryBackward):
        raise ConfigError(
            f"{needs[0]} needs a backward pass that keeps its graph, which {type(module).__name__} does not offer",
            "derive the module from recipes.modules.optim.backward.FactoryBackward",
        )
    if needs and module.trainer.world_size > 1:
        raise ConfigError(
            f"{needs[0]} differentiates the gradients again, which DDP's all-reduced gradients do not allow",
            "train it on one device, or choose an optimizer without Hessian-vector products",
        )
    if isinstance(module, FactoryBackward):
        module.create_graph = bool(needs)


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
    facts = run_facts(module.trainer)
    if module.trainer.fast_dev_run and (scheduler.warmup_steps or scheduler.warmup_fraction):
        # Lightning's smoke test runs a step or a few: the schedule's warmup would not fit in it
        log.warning("fast_dev_run: the schedule runs without its warmup")
        scheduler = replace(scheduler, warmup_steps=0, warmup_fraction=0.0)
    if opt_cfg.schedule_free and scheduler.name != "none":
        warmup = scheduler.warmup(facts.total_steps)
        if warmup and "warmup_steps" not in opt_cfg.kwargs:
            opt_cfg = replace(opt_cfg, kwargs={**opt_cfg.kwargs, "warmup_steps": warmup})
        log.warning(
            "%s is schedule-free: the %r schedule is not applied; %d warmup steps go to the optimizer itself",
            opt_cfg.name,
            scheduler.name,
            warmup,
        )
        scheduler = SchedulerConfig(name="none")
    _keep_graph(module, opt_cfg)
    with _unsharded(module):
        opt = create_optimizer(module, opt_cfg, fused_conflict=fused_clipping_conflict(module.trainer), facts=facts)
    _refuse_sharded(module, opt)
    sched = build_scheduler(opt, scheduler, facts.total_steps)
    if sched is None:
        return {"optimizer": opt}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
