"""Learning-rate schedules stepped every optimizer step: linear warmup, then a decay shape.

The multiplier at optimizer step ``s`` (0-based) of ``T`` total steps, with ``W`` warmup steps and
minimum ratio ``m``:

* warmup, ``s < W``: ``(s + 1) / W``, so the last warmup step runs at the peak lr;
* then, with progress ``p = (s - W) / (T - 1 - W)`` running from 0 to 1 at the last step:
  ``cosine``: ``m + (1 - m) * (1 + cos(pi p)) / 2``; ``linear``: ``m + (1 - m) * (1 - p)``;
  ``constant``: 1; ``inverse_sqrt``: ``max(m, sqrt(W / (s + 1)))``;
  ``wsd`` (warmup-stable-decay): 1 until the last ``decay_fraction`` of the steps, then linear to ``m``.

``T`` comes from ``trainer.estimated_stepping_batches`` (epochs, accumulation and devices included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Literal

import torch

from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry

__all__ = ["Schedule", "SchedulerConfig", "SCHEDULES", "lr_multiplier", "build_scheduler"]


@dataclass(frozen=True)
class Schedule:
    """One registered schedule: ``decay(step, total, warmup, min_ratio, decay_fraction)`` is the multiplier
    after warmup; None means no scheduler at all."""

    name: str
    description: str
    decay: Callable[[int, int, int, float, float], float] | None


def _progress(step: int, total: int, warmup: int) -> float:
    """0 at the first step after warmup, 1 at the last step."""
    return min(1.0, (step - warmup) / max(1, total - 1 - warmup))


def _cosine(step: int, total: int, warmup: int, m: float, _: float) -> float:
    return m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * _progress(step, total, warmup)))


def _linear(step: int, total: int, warmup: int, m: float, _: float) -> float:
    return m + (1.0 - m) * (1.0 - _progress(step, total, warmup))


def _inverse_sqrt(step: int, total: int, warmup: int, m: float, _: float) -> float:
    return max(m, math.sqrt(max(warmup, 1) / (step + 1)))


def _wsd(step: int, total: int, warmup: int, m: float, decay_fraction: float) -> float:
    start = max(warmup, total - max(1, round(decay_fraction * total)))
    return 1.0 if step < start else 1.0 - (1.0 - m) * min(1.0, (step - start + 1) / (total - start))


SCHEDULES: Registry[Schedule] = Registry(
    "schedule",
    (
        (s.name, s)
        for s in (
            Schedule("cosine", "linear warmup, then cosine decay to min_lr_ratio at the last step", _cosine),
            Schedule("linear", "linear warmup, then linear decay to min_lr_ratio at the last step", _linear),
            Schedule("constant", "linear warmup, then the peak lr to the end", lambda *_: 1.0),
            Schedule(
                "inverse_sqrt",
                "linear warmup, then lr * sqrt(warmup / step) (Transformer-style), floored at min_lr_ratio",
                _inverse_sqrt,
            ),
            Schedule(
                "wsd",
                "warmup-stable-decay: warmup, peak lr, then linear decay over the last decay_fraction of steps",
                _wsd,
            ),
            Schedule(
                "none",
                "no scheduler at all: the optimizer's lr is used as is (schedule-free optimizers need none)",
                None,
            ),
        )
    ),
    setting="model.scheduler.name",
)
ScheduleName = Literal[tuple(SCHEDULES)]  # the names above, so --help lists them


@dataclass(frozen=True)
class SchedulerConfig:
    """The learning-rate schedule.

    Args:
        name: a registered schedule (``recipes list schedulers``).
        warmup_steps: optimizer steps of linear warmup (exclusive with warmup_fraction).
        warmup_fraction: warmup as a fraction of all optimizer steps.
        min_lr_ratio: the lr at the end of the decay, as a fraction of the peak lr.
        decay_fraction: for wsd, the fraction of steps spent decaying at the end.
    """

    name: ScheduleName = "cosine"
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    min_lr_ratio: float = 0.0
    decay_fraction: float = 0.2

    def __post_init__(self) -> None:
        SCHEDULES.lookup(self.name)
        if self.warmup_steps < 0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(
                "warmup must be >= 0 steps and a fraction in [0, 1)", "fix scheduler.warmup_steps / warmup_fraction"
            )
        if self.warmup_steps and self.warmup_fraction:
            raise ConfigError("both warmup_steps and warmup_fraction are set", "set only one of them")
        if not 0.0 <= self.min_lr_ratio <= 1.0 or not 0.0 < self.decay_fraction <= 1.0:
            raise ConfigError(
                "min_lr_ratio must be in [0, 1] and decay_fraction in (0, 1]", "fix the scheduler settings"
            )

    def warmup(self, total_steps: int) -> int:
        return self.warmup_steps or int(self.warmup_fraction * total_steps)


def lr_multiplier(
    step: int, *, name: str, total: int, warmup: int, min_ratio: float, decay_fraction: float = 0.2
) -> float:
    """The factor applied to each group's peak lr at optimizer step ``step`` (0-based)."""
    schedule = SCHEDULES.lookup(name)
    if schedule.decay is None:
        raise ConfigError(
            f"no lr multiplier for schedule {name!r}",
            f"choose one of {', '.join(n for n, s in SCHEDULES.items() if s.decay)}",
        )
    return (step + 1) / warmup if step < warmup else schedule.decay(step, total, warmup, min_ratio, decay_fraction)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """A per-step ``LambdaLR`` for ``cfg``, or None for ``name: none``."""
    if SCHEDULES[cfg.name].decay is None:
        return None
    if total_steps < 1:
        raise ConfigError(f"the run has {total_steps} optimizer steps", "set trainer.max_epochs or trainer.max_steps")
    warmup = cfg.warmup(total_steps)
    if warmup >= total_steps:
        raise ConfigError(
            f"warmup ({warmup} steps) is not shorter than the run ({total_steps} steps)", "shorten the warmup"
        )
    fn = partial(
        lr_multiplier,
        name=cfg.name,
        total=total_steps,
        warmup=warmup,
        min_ratio=cfg.min_lr_ratio,
        decay_fraction=cfg.decay_fraction,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
