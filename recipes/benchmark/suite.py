"""A benchmark suite under AlgoPerf's rules: workloads (a task config, a target, budgets) times submissions.

Suites are YAML files read with jsonargparse into these dataclasses, so every key is checked and can be
overridden from the command line (``--studies 1``). Under the external-tuning ruleset each submission
declares one search space for every workload, and every study draws ``trials`` points from it
(``search_space.py``); under the self-tuning ruleset a submission has no hyperparameters to tune, runs once
per study, and gets ``self_tuning_budget_factor`` times the budget. One *run* is one trial:
(workload, submission, initializer, study, trial). ``Suite.runs()`` lists them in a fixed order, each with a
key that names exactly what it trained.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from recipes.benchmark.search_space import SearchSpace, load_search_space, sample_trials, study_seed
from recipes.benchmark.submission import FACTORY, Budget, build_submission
from recipes.config_files import config_id
from recipes.modules.config import as_config
from recipes.modules.errors import ConfigError
from recipes.modules.init import InitConfig

__all__ = ["Workload", "SubmissionSpec", "Suite", "Run", "RULESETS"]

RULESETS = ("external_tuning", "self_tuning")


@dataclass
class Workload:
    """A fixed task and the target a submission must reach.

    Args:
        name: short name used in results and reports.
        config: the task's config: a shipped name (``regression``) or a YAML path relative to the suite file;
            run with its model and data unchanged.
        metric: the logged validation metric the target is on, e.g. ``val/acc``.
        mode: ``max`` if higher is better, ``min`` if lower is.
        target: the value to reach (AlgoPerf's validation target; ``recipes benchmark targets`` sets it).
        max_steps: step budget (optimizer steps).
        max_runtime: training-time budget in seconds (evaluation excluded), AlgoPerf's ``max_runtime``; a
            trial stops at whichever budget it spends first, and a miss counts as this time in speedups.
        eval_every_n_steps: evaluation cadence in steps; time-to-target is the first evaluation at the target.
        eval_every_seconds: evaluate every this many seconds of training instead (AlgoPerf's
            ``eval_period_time_sec``); 0 keeps the step cadence.
        overrides: extra ``--key value`` settings for the task config, e.g. ``{data.batch_size: 64}``.
    """

    name: str
    config: str
    metric: str
    mode: Literal["min", "max"]
    target: float
    max_steps: int
    max_runtime: float
    eval_every_n_steps: int = 50
    eval_every_seconds: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)

    def reached(self, value: float) -> bool:
        return value >= self.target if self.mode == "max" else value <= self.target

    def scaled(self, factor: float) -> "Workload":
        """This workload with both budgets multiplied by ``factor`` (the self-tuning ruleset's)."""
        if factor == 1.0:
            return self
        return replace(self, max_steps=math.ceil(self.max_steps * factor), max_runtime=self.max_runtime * factor)


@dataclass
class SubmissionSpec:
    """A submission: an algorithm and, under external tuning, one search space for every workload.

    Args:
        label: name in results and reports (defaults to ``optimizer.name`` or the class name).
        optimizer: ``OptimizerConfig`` keys for the factory adapter: the optimizer's name and every setting the
            search space does not sample.
        scheduler: ``SchedulerConfig`` keys; None keeps the task config's schedule.
        search_space: AlgoPerf's ``tuning_search_space`` format, inline or a JSON/YAML file relative to the
            suite file; required under external tuning, refused under self-tuning.
        submission: dotted path of a class implementing ``recipes.benchmark.submission.Submission``; None is
            the factory adapter (``optimizer`` and ``scheduler``).
        arguments: fixed constructor arguments of that class.
        per_workload: refused: AlgoPerf's rules allow no per-workload settings (kept only to say so).
        lr_grid: refused, like per_workload: sample the lr from the search space instead.
    """

    label: str | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    search_space: str | dict[str, dict[str, Any]] | list[dict[str, Any]] | None = None
    submission: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    per_workload: dict[str, Any] | None = None
    lr_grid: list[float] | None = None

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.submission:
            return self.submission.rpartition(".")[2]
        return str((self.optimizer or {}).get("name", "adamw"))

    @property
    def submission_path(self) -> str:
        return self.submission or FACTORY

    def constructor_args(self) -> dict[str, Any]:
        args = dict(self.arguments)
        if self.optimizer is not None:
            args["optimizer"] = self.optimizer
        if self.scheduler is not None:
            args["scheduler"] = self.scheduler
        return args


@dataclass(frozen=True)
class Run:
    """One trial of the suite; ``key`` identifies it in the results file (resume skips it).

    ``workload`` carries the trial's budgets (scaled under self-tuning); ``overrides`` are the task-config
    settings the submission asked for (the factory's ``model.optimizer`` and ``model.scheduler``, a batch
    size), resolved when the suite is read so the key names exactly what trains.
    """

    workload: Workload
    label: str
    init_label: str
    ruleset: str
    study: int
    trial: int
    seed: int
    submission: str
    arguments: dict[str, Any]
    hyperparameters: dict[str, Any]
    overrides: dict[str, Any]
    init: dict[str, Any]
    trainer: dict[str, Any]

    @property
    def optimizer(self) -> dict[str, Any] | None:
        return self.overrides.get("model.optimizer")

    @property
    def lr(self) -> float | None:
        """The trial's learning rate, for reports: the factory's, else a sampled ``learning_rate``/``lr``."""
        if self.optimizer is not None:
            return float(self.optimizer["lr"])
        value = self.hyperparameters.get("learning_rate", self.hyperparameters.get("lr"))
        return None if value is None else float(value)

    @property
    def budget(self) -> Budget:
        return Budget(self.workload.name, self.workload.max_steps, self.workload.max_runtime)

    @property
    def spec(self) -> dict[str, Any]:
        # The task config by name or content, not by path: the same run keys the same wherever its file lives.
        workload = {**asdict(self.workload), "config": config_id(self.workload.config)}
        return {
            "workload": workload,
            "label": self.label,
            "study": self.study,
            "trial": self.trial,
            "ruleset": self.ruleset,
            "submission": self.submission,
            "arguments": self.arguments,
            "hyperparameters": self.hyperparameters,
            "overrides": self.overrides,
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


def device_count(devices: Any) -> int:
    """How many devices a Trainer ``devices`` setting names: an int, a list of indices, ``"0,1"`` or a count as
    a string; ``auto`` and -1 count as 1."""
    if isinstance(devices, (list, tuple)):
        return max(len(devices), 1)
    text = str(devices).strip()
    if text in ("auto", "-1", ""):
        return 1
    if "," in text:  # Lightning's "0,1": device indices
        return max(len([d for d in text.split(",") if d.strip()]), 1)
    try:
        return max(int(text), 1)
    except ValueError:
        return 1


# Settings the harness owns: a workload, trainer or submission setting that changed them would make a record
# claim budgets, a cadence or a seed it did not train with.
HARNESS_KEYS = (
    "seed_everything",
    "trainer.max_steps",
    "trainer.max_epochs",
    "trainer.max_time",
    "trainer.val_check_interval",
    "trainer.check_val_every_n_epoch",
    "trainer.num_sanity_val_steps",
    "trainer.logger",
    "trainer.enable_checkpointing",
    "trainer.callbacks",
)


def _owned(keys: list[str], where: str) -> None:
    taken = sorted(k for k in keys if k in HARNESS_KEYS or any(k.startswith(h + ".") for h in HARNESS_KEYS))
    if taken:
        raise ConfigError(
            f"{where} sets {', '.join(taken)}, which the benchmark sets from the workload (budgets, cadence, seed)",
            "use the workload's max_steps, max_runtime, eval_every_n_steps / eval_every_seconds instead",
        )


def trial_seed(study: int, trial: int) -> int:
    """The training seed of trial ``trial`` in study ``study``: the same for every submission (common random
    numbers), different for every trial."""
    return 100_000 * study + trial


@dataclass
class Suite:
    """Workloads x submissions x initializers, scored by AlgoPerf's rules.

    Args:
        name: the suite's name.
        workloads: the workloads.
        submissions: the submissions to compare.
        ruleset: ``external_tuning`` (a search space per submission, ``trials`` per study, the fastest trial
            of each study counts) or ``self_tuning`` (no search space, one trial per study, the budgets
            times ``self_tuning_budget_factor``).
        studies: independent repetitions of the tuning; a workload's time is the median over studies.
        trials: trials per study under external tuning (default 5, AlgoPerf's); refused under self-tuning.
        tuning_seed: seeds the studies' quasi-random sequences; study j draws with ``study_seed(tuning_seed, j)``.
        sequence: the quasi-random points: ``scipy`` (a scrambled Halton sequence per study, a prefix of it per
            study, so more trials keep those run) or ``algoperf`` (AlgoPerf's own points and shuffle,
            ``recipes.benchmark.search_space.algoperf_halton``).
        self_tuning_budget_factor: the self-tuning ruleset's budget multiplier (AlgoPerf: 1.5).
        initializers: initializer settings (``InitConfig`` keys) to cross with the submissions; empty keeps
            each task config's own initializer.
        baseline: the submission label speedups are measured against.
        trainer: Trainer settings for every run (accelerator, devices, precision, strategy).
        results: the JSONL results file runs are appended to.
        stop_at_target: stop a run at its first evaluation at the target (saves time; the curve then ends there).
        tau_max: the largest ratio the performance profile counts (AlgoPerf uses 4).
        isolate: train each run in its own process; None decides by the trainer settings (yes for more
            than one device or node, which Lightning's ddp launcher needs).
    """

    name: str
    workloads: list[Workload]
    submissions: list[SubmissionSpec]
    ruleset: Literal["external_tuning", "self_tuning"] = "external_tuning"
    studies: int = 3
    trials: int | None = None
    tuning_seed: int = 0
    sequence: Literal["scipy", "algoperf"] = "scipy"
    self_tuning_budget_factor: float = 1.5
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
        many = devices in (-1, "auto", "-1") or device_count(devices) > 1
        return many or int(self.trainer.get("num_nodes", 1)) > 1

    @property
    def trials_per_study(self) -> int:
        return 1 if self.ruleset == "self_tuning" else (self.trials or 5)

    @property
    def budget_factor(self) -> float:
        return self.self_tuning_budget_factor if self.ruleset == "self_tuning" else 1.0

    def __post_init__(self) -> None:
        if not self.workloads or not self.submissions:
            raise ConfigError(
                f"suite {self.name!r} needs at least one workload and submission",
                "list them under workloads and submissions",
            )
        if self.ruleset == "self_tuning" and self.trials is not None:
            raise ConfigError(
                "the self-tuning ruleset runs one trial per study: trials is not a setting of it",
                "remove trials (or use ruleset: external_tuning)",
            )
        if self.studies < 1 or (self.trials is not None and self.trials < 1) or self.self_tuning_budget_factor <= 0:
            raise ConfigError(
                "studies and trials must be >= 1 and self_tuning_budget_factor > 0", "fix the suite's tuning settings"
            )
        for what, names in (
            ("workload", [w.name for w in self.workloads]),
            ("submission label", [o.name for o in self.submissions]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(
                    f"suite {self.name!r} repeats {what} {', '.join(dupes)}",
                    f"give each {what} a unique name (submissions: set label)",
                )
        for o in self.submissions:
            self._check_submission(o)
        for i in self.initializers:
            as_config(InitConfig, i)
        _owned([f"trainer.{k}" for k in self.trainer], "the suite's trainer")
        for w in self.workloads:
            if not Path(w.config).is_file():
                raise ConfigError(
                    f"workload {w.name!r}: no task config {w.config}",
                    "give a shipped config name (recipes list configs) or a path relative to the suite file",
                )
            if w.max_steps < 1 or w.eval_every_n_steps < 1 or w.eval_every_seconds < 0:
                raise ConfigError(
                    f"workload {w.name!r}: max_steps and eval_every_n_steps must be >= 1, eval_every_seconds >= 0",
                    "set a step budget and an evaluation cadence",
                )
            _owned(list(w.overrides), f"workload {w.name!r} overrides")
            if not w.max_runtime > 0:
                raise ConfigError(
                    f"workload {w.name!r}: max_runtime must be > 0 seconds",
                    "set the training-time budget (AlgoPerf's max_runtime; a miss counts as this time in speedups)",
                )
        if self.baseline not in {o.name for o in self.submissions}:
            raise ConfigError(
                f"baseline {self.baseline!r} is not one of the suite's submissions",
                f"use one of {', '.join(o.name for o in self.submissions)}",
            )

    def _check_submission(self, o: SubmissionSpec) -> None:
        if o.per_workload is not None or o.lr_grid is not None:
            raise ConfigError(
                f"submission {o.name!r}: per_workload and lr_grid are hand tuning, which AlgoPerf's rules forbid",
                "declare one search_space for all workloads (e.g. learning_rate: {min: 1e-4, max: 0.1, scaling: log})",
            )
        if self.ruleset == "self_tuning" and o.search_space is not None:
            raise ConfigError(
                f"submission {o.name!r}: the self-tuning ruleset allows no search space",
                "remove search_space (the submission tunes itself on the clock) or use ruleset: external_tuning",
            )
        if self.ruleset == "external_tuning" and o.search_space is None:
            raise ConfigError(
                f"submission {o.name!r}: the external-tuning ruleset needs a search space",
                "give search_space (AlgoPerf's format; {} for nothing to tune)",
            )
        # every point of the first study builds, so a bad name or value fails now, not in trial 7
        for point in self.points(o, 0):
            build_submission(o.submission_path, o.constructor_args(), point)

    def search_space(self, o: SubmissionSpec) -> SearchSpace:
        if o.search_space is None:
            return {}
        return load_search_space(o.search_space)

    def points(self, o: SubmissionSpec, study: int) -> list[dict[str, Any]]:
        """The hyperparameters of study ``study``'s trials for submission ``o``."""
        if self.ruleset == "self_tuning":
            return [{}]
        seed = study_seed(self.tuning_seed, study)
        return sample_trials(self.search_space(o), self.trials_per_study, seed, self.sequence)

    def runs(self, only: list[str] | None = None) -> list[Run]:
        """Every trial, workload by workload, then submission, initializer, study and trial."""
        if only:
            missing = sorted(set(only) - {w.name for w in self.workloads})
            if missing:
                raise ConfigError(
                    f"--only names unknown workloads {', '.join(missing)}",
                    f"use one of {', '.join(w.name for w in self.workloads)}",
                )
        points = {(o.name, j): self.points(o, j) for o in self.submissions for j in range(self.studies)}
        out = []
        for base in self.workloads:
            if only and base.name not in only:
                continue
            w = base.scaled(self.budget_factor)
            budget = Budget(w.name, w.max_steps, w.max_runtime)
            for o in self.submissions:
                for init in self.initializers or [{}]:
                    init_full = asdict(as_config(InitConfig, init)) if init else {}
                    for study in range(self.studies):
                        for trial, hp in enumerate(points[(o.name, study)]):
                            sub = build_submission(o.submission_path, o.constructor_args(), hp)
                            overrides = dict(sub.task_overrides(budget))
                            _owned(list(overrides), f"submission {o.name!r}")
                            batch = sub.batch_size(budget)
                            if batch is not None:
                                overrides["data.batch_size"] = int(batch)
                            out.append(
                                Run(
                                    workload=w,
                                    label=o.name,
                                    init_label=_init_label(init),
                                    ruleset=self.ruleset,
                                    study=study,
                                    trial=trial,
                                    seed=trial_seed(study, trial),
                                    submission=o.submission_path,
                                    arguments=o.constructor_args(),
                                    hyperparameters=hp,
                                    overrides=overrides,
                                    init=init_full,
                                    trainer=dict(self.trainer),
                                )
                            )
        return out
