"""What users write under ``model.optimizer``: one optimizer's settings, a fallback for the parameters the
main optimizer does not take, a switch to another optimizer part-way, and how parameters are grouped.

``--model.optimizer.name muon --model.optimizer.fallback '{name: adamw, lr: 3e-4}'`` routes hidden matrices
to Muon and the rest to AdamW; ``--model.optimizer.switch '{name: sgd, lr: 0.1, momentum: 0.9, at_fraction:
0.5}'`` trains with the main optimizer for half the run and with SGD after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from recipes.modules.config import as_config
from recipes.modules.errors import ConfigError
from recipes.modules.optim.groups import GROUPING_ARGS, Grouping, GroupRules
from recipes.modules.optim.registry import get_optimizer_info

__all__ = ["DEFAULT_WEIGHT_DECAY", "OptimizerSettings", "SwitchConfig", "OptimizerConfig", "optimizer_dict"]

DEFAULT_WEIGHT_DECAY = 0.01  # for an optimizer that has weight decay, when the user sets none
Implementation = Literal["auto", "fused", "foreach", "for_loop"]

_ONE_OPTIMIZER = """
        name: a registered name (``python -m recipes list optimizers``) or a dotted path to an Optimizer class.
        lr: the peak learning rate (the schedule scales it).
        weight_decay: weight decay for ``ndim >= 2`` weights (decoupled for AdamW, an L2 penalty for Adam and
            SGD); None: 0.01 for an optimizer that has weight decay, none for one that has not.
        weight_decay_norm: the AdamW paper's normalized weight decay lambda_norm: the run uses
            ``lambda_norm * sqrt(b / (B * T))`` (b the batch size, B the training-set size, T the epochs),
            computed from the Trainer and datamodule and logged at fit start; exclusive with weight_decay.
        betas: (beta1, beta2) for Adam-family optimizers; None keeps the optimizer's default.
        eps: the denominator's epsilon; None keeps the optimizer's default.
        momentum: momentum for SGD/RMSprop-style optimizers; None keeps the default.
        nesterov: Nesterov momentum for SGD; None keeps the default.
        implementation: auto picks torch's fused kernel when the optimizer and device support it, except in a
            run that clips gradients under mixed precision, which gets foreach (``fused_clipping_conflict``).
        kwargs: any other constructor argument of the optimizer, e.g. ``{amsgrad: true}``."""


@dataclass(frozen=True)
class OptimizerSettings:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float | None = None
    weight_decay_norm: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    implementation: Implementation = "auto"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.lr >= 0:  # also catches NaN
            raise ConfigError(
                f"learning rate must be >= 0, got {self.lr}", "set model.optimizer.lr to a positive number, e.g. 1e-3"
            )
        for key in ("weight_decay", "weight_decay_norm"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise ConfigError(f"{key} must be >= 0, got {value}", f"set model.optimizer.{key} >= 0")
        if self.weight_decay is not None and self.weight_decay_norm is not None:
            raise ConfigError(
                "both weight_decay and weight_decay_norm are set",
                "set one: weight_decay_norm computes the weight decay from the run's length",
            )
        info = get_optimizer_info(self.name)  # fail at parse time, with the closest names
        if info.unusable:
            raise ConfigError(f"optimizer {self.name!r} cannot be used here: {info.unusable}", info.instead)

    @property
    def schedule_free(self) -> bool:
        return get_optimizer_info(self.name).schedule_free


OptimizerSettings.__doc__ = "One optimizer and its hyperparameters.\n\n    Args:" + _ONE_OPTIMIZER


@dataclass(frozen=True)
class SwitchConfig(OptimizerSettings):
    at_step: int | None = None
    at_fraction: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.at_step is None) == (self.at_fraction is None):
            raise ConfigError(
                "a switch needs exactly one of at_step and at_fraction", "e.g. model.optimizer.switch.at_fraction: 0.5"
            )
        if (
            self.at_step is not None
            and self.at_step < 0
            or self.at_fraction is not None
            and not 0 <= self.at_fraction <= 1
        ):
            raise ConfigError("at_step must be >= 0 and at_fraction in [0, 1]", "fix model.optimizer.switch")

    def step(self, facts: Any) -> int:
        """The optimizer step at which the switch happens, in the run ``facts`` (``RunFacts``) describe."""
        if self.at_step is not None:
            return self.at_step
        return round(self.at_fraction * facts.need("total_steps", "a switch at_fraction"))


SwitchConfig.__doc__ = (
    "The optimizer training switches to, and when (SWATS-style: Adam, then SGD with momentum); it takes every"
    " parameter, with a fresh state.\n\n    Args:"
    + _ONE_OPTIMIZER
    + """
        at_step: the optimizer step at which it takes over.
        at_fraction: the fraction of the run's optimizer steps after which it takes over."""
)

Part = Literal["main", "fallback"]


@dataclass(frozen=True)
class OptimizerConfig(OptimizerSettings, Grouping):
    fallback: OptimizerSettings | None = None
    route: dict[str, Part] = field(default_factory=dict)
    switch: SwitchConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.fallback, dict):  # from YAML, the command line or a checkpoint
            object.__setattr__(self, "fallback", as_config(OptimizerSettings, self.fallback))
        if isinstance(self.switch, dict):
            object.__setattr__(self, "switch", as_config(SwitchConfig, self.switch))
        if (self.embedding_weight_decay or 0) < 0:
            raise ConfigError(
                f"embedding_weight_decay must be >= 0, got {self.embedding_weight_decay}",
                "set model.optimizer.embedding_weight_decay >= 0",
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(
                f"layer_decay must be in (0, 1], got {self.layer_decay}", "use e.g. 0.75, or null to turn it off"
            )
        if any(m < 0 for m in self.lr_mult.values()):
            raise ConfigError("lr_mult values must be >= 0", "fix model.optimizer.lr_mult")
        bad = sorted(k for k, v in self.route.items() if v not in ("main", "fallback"))
        if bad:
            raise ConfigError(f"route sends {bad} to an unknown part", "route each name prefix to main or fallback")
        if "fallback" in self.route.values() and self.fallback is None:
            raise ConfigError("route sends parameters to the fallback, but none is set", "set model.optimizer.fallback")
        if self.switch is not None and get_optimizer_info(self.switch.name).matrices_only:
            raise ConfigError(
                f"the switch's optimizer {self.switch.name!r} takes hidden matrices only",
                "switch to an optimizer that takes every parameter, e.g. sgd",
            )

    def rules(self, weight_decay: float) -> GroupRules:
        """The grouping rules, with ``weight_decay`` (one part's resolved value) for ``ndim >= 2`` weights."""
        return GroupRules(**{**self.grouping(), "lr_mult": dict(self.lr_mult)}, weight_decay=weight_decay)


OptimizerConfig.__doc__ = (
    "The optimizer, the parameters it routes elsewhere, a switch, and how the model's parameters are grouped."
    "\n\n    Args:"
    + _ONE_OPTIMIZER
    + """
        fallback: the optimizer for the parameters the main one does not take: with a fallback (and always for
            a matrices-only optimizer such as Muon, whose fallback defaults to AdamW), hidden matrices and conv
            filters go to the main optimizer; embeddings, the output head (the last module with a weight
            matrix), biases and norms go to the fallback.
        route: name prefix -> main or fallback, overriding that rule; the longest matching prefix wins, and
            ``""`` matches every parameter.
        switch: another optimizer that takes over every parameter at a step or a fraction of the run."""
    + GROUPING_ARGS
)


# Options a config holds only when set: while unset they stay out of ``optimizer_dict``, so an optimizer's
# dict (and a benchmark run's key, which hashes it) reads as it did before they existed.
_UNSET_OPTIONS = {"fallback": None, "route": {}, "switch": None, "weight_decay_norm": None}


def optimizer_dict(cfg: OptimizerConfig) -> dict[str, Any]:
    """``cfg`` as plain values, without the composite and normalized-decay options it leaves unset."""
    return {k: v for k, v in asdict(cfg).items() if not (k in _UNSET_OPTIONS and v == _UNSET_OPTIONS[k])}
