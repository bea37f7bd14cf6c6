"""A benchmark suite: workloads (a task config, a target, a budget) times optimizers, seeds and initializers.

Suites are YAML files read with jsonargparse into these dataclasses, so every key is checked and can be
overridden from the command line (``--seeds [0]``). One *run* is one (workload, optimizer, lr, initializer,
seed); ``Suite.runs()`` lists them in a fixed order, each with a key that names exactly what it trained.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from recipes.config_files import config_id
from recipes.modules.config import as_config
from recipes.modules.errors import ConfigError
from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, SchedulerConfig

__all__ = ["Workload", "OptimizerSpec", "Suite", "Run"]


@dataclass
class Workload:
    """A fixed task and the target an optimizer must reach.

    Args:
        name: short name used in results and reports.
        config: the task's config: a shipped name (``regression``) or a YAML path relative to the suite file;
            run with its model and data unchanged.
        metric: the logged validation metric the target is on, e.g. ``val/acc``.
        mode: ``max`` if higher is better, ``min`` if lower is.
        target: the value to reach (AlgoPerf's validation target).
        max_steps: step budget (optimizer steps).
        max_seconds: training-time budget in seconds (evaluation time excluded); 0 for none.
        eval_every_n_steps: evaluation cadence; time-to-target is the first evaluation at the target.
        overrides: extra ``--key value`` settings for the task config, e.g. ``{data.batch_size: 64}``.
    """

    name: str
    config: str
    metric: str
    mode: Literal["min", "max"]
    target: float
    max_steps: int
    max_seconds: float = 0.0
    eval_every_n_steps: int = 50
    overrides: dict[str, Any] = field(default_factory=dict)

    def reached(self, value: float) -> bool:
        return value >= self.target if self.mode == "max" else value <= self.target


@dataclass
class OptimizerSpec:
    """An optimizer "submission": factory settings, optionally a schedule, an lr grid and per-workload changes.

    Args:
        label: name in results and reports (defaults to ``optimizer.name``).
        optimizer: ``OptimizerConfig`` keys (name, lr, weight_decay, betas, eps, momentum, nesterov, kwargs...).
        scheduler: ``SchedulerConfig`` keys; None keeps the task config's schedule.
        lr_grid: learning rates to try instead of ``optimizer.lr``; the best per workload is scored.
        per_workload: workload name -> optimizer keys that replace these settings there (e.g. its lr), and
            optionally ``lr_grid``, that workload's own grid.
    """

    optimizer: dict[str, Any]
    label: str | None = None
    scheduler: dict[str, Any] | None = None
    lr_grid: list[float] = field(default_factory=list)
    per_workload: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or str(self.optimizer.get("name", "optimizer"))


@dataclass(frozen=True)
class Run:
    """One training run of the suite; ``key`` identifies it in the results file (resume skips it)."""

    workload: Workload
    label: str
    init_label: str
    lr: float
    seed: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    init: dict[str, Any]
    trainer: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        # The task config by name or content, not by path: the same run keys the same wherever its file lives.
        workload = {**asdict(self.workload), "config": config_id(self.workload.config)}
        return {
            "workload": workload,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "init": self.init,
            "seed": self.seed,
            "trainer": self.trainer,
        }

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields: what a worker process or a Ray task receives."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Run":
        data = dict(data)
        return cls(workload=Workload(**data.pop("workload")), **data)


def _init_label(init: dict[str, Any]) -> str:
    """``kaiming_normal`` or, with settings beyond the name, ``kaiming_normal(mode=fan_out)``."""
    if not init:
        return "task default"
    extra = ", ".join(f"{k}={v}" for k, v in sorted(init.items()) if k != "name")
    return f"{init.get('name', 'default')}({extra})" if extra else str(init.get("name", "default"))


@dataclass
class Suite:
    """Workloads x optimizers x initializers x seeds.

    Args:
        name: the suite's name.
        workloads: the workloads.
        optimizers: the optimizers to compare.
        seeds: training seeds; every (workload, optimizer, lr, initializer) runs once per seed.
        initializers: initializer settings (``InitConfig`` keys) to cross with the optimizers; empty keeps
            each task config's own initializer.
        baseline: the optimizer label speedups are measured against.
        trainer: Trainer settings for every run (accelerator, devices, precision, strategy).
        results: the JSONL results file runs are appended to.
        stop_at_target: stop a run at its first evaluation at the target (saves time; the curve then ends there).
        tau_max: the largest ratio the performance profile counts (AlgoPerf uses 4).
        isolate: train each run in its own process; None decides by the trainer settings (yes for more
            than one device or node, which Lightning's ddp launcher needs).
    """

    name: str
    workloads: list[Workload]
    optimizers: list[OptimizerSpec]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    initializers: list[dict[str, Any]] = field(default_factory=list)
    baseline: str = "adamw"
    trainer: dict[str, Any] = field(default_factory=dict)
    results: str = "runs/benchmark/results.jsonl"
    stop_at_target: bool = True
    tau_max: float = 4.0
    isolate: bool | None = None

    @property
    def isolated(self) -> bool:
        if self.isolate is not None:
            return self.isolate
        devices = self.trainer.get("devices", 1)
        many = (
            devices in (-1, "auto", "-1")
            or (isinstance(devices, int) and devices > 1)
            or (isinstance(devices, (list, str)) and len(str(devices).split(",")) > 1)
        )
        return many or int(self.trainer.get("num_nodes", 1)) > 1

    def __post_init__(self) -> None:
        if not self.workloads or not self.optimizers or not self.seeds:
            raise ConfigError(
                f"suite {self.name!r} needs at least one workload, optimizer and seed",
                "list them under workloads, optimizers and seeds",
            )
        for what, names in (
            ("workload", [w.name for w in self.workloads]),
            ("optimizer label", [o.name for o in self.optimizers]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(
                    f"suite {self.name!r} repeats {what} {', '.join(dupes)}",
                    f"give each {what} a unique name (optimizers: set label)",
                )
        wl = {w.name for w in self.workloads}
        for o in self.optimizers:
            as_config(OptimizerConfig, o.optimizer)  # fails early, naming the bad key
            for changes in o.per_workload.values():
                as_config(OptimizerConfig, {**o.optimizer, **{k: v for k, v in changes.items() if k != "lr_grid"}})
            if o.scheduler is not None:
                as_config(SchedulerConfig, o.scheduler)
            unknown = sorted(set(o.per_workload) - wl)
            if unknown:
                raise ConfigError(
                    f"optimizer {o.name!r}: per_workload names unknown workloads {', '.join(unknown)}",
                    f"use one of {', '.join(sorted(wl))}",
                )
        for i in self.initializers:
            as_config(InitConfig, i)
        for w in self.workloads:
            if not Path(w.config).is_file():
                raise ConfigError(
                    f"workload {w.name!r}: no task config {w.config}",
                    "give a shipped config name (recipes list configs) or a path relative to the suite file",
                )
            if w.max_steps < 1 or w.eval_every_n_steps < 1:
                raise ConfigError(
                    f"workload {w.name!r}: max_steps and eval_every_n_steps must be >= 1",
                    "set a step budget and an evaluation cadence",
                )
        if self.baseline not in {o.name for o in self.optimizers}:
            raise ConfigError(
                f"baseline {self.baseline!r} is not one of the suite's optimizers",
                f"use one of {', '.join(o.name for o in self.optimizers)}",
            )

    def runs(self, only: list[str] | None = None) -> list[Run]:
        """Every run, workload by workload, then optimizer, lr, initializer and seed."""
        out = []
        for w in self.workloads:
            if only and w.name not in only:
                continue
            for o in self.optimizers:
                changes = dict(o.per_workload.get(w.name, {}))
                grid = changes.pop("lr_grid", o.lr_grid)
                opt = asdict(
                    OptimizerConfig(**{**o.optimizer, **changes})
                )  # complete: nothing leaks in from the task config
                sched = asdict(SchedulerConfig(**o.scheduler)) if o.scheduler is not None else None
                for lr in grid or [opt["lr"]]:
                    for init in self.initializers or [{}]:
                        init_full = asdict(InitConfig(**init)) if init else {}
                        for seed in self.seeds:
                            out.append(
                                Run(
                                    w,
                                    o.name,
                                    _init_label(init),
                                    float(lr),
                                    seed,
                                    {**opt, "lr": float(lr)},
                                    sched,
                                    init_full,
                                    dict(self.trainer),
                                )
                            )
        if only:
            missing = sorted(set(only) - {w.name for w in self.workloads})
            if missing:
                raise ConfigError(
                    f"--only names unknown workloads {', '.join(missing)}",
                    f"use one of {', '.join(w.name for w in self.workloads)}",
                )
        return out

    def with_seeds(self, seeds: list[int]) -> "Suite":
        return replace(self, seeds=seeds)
