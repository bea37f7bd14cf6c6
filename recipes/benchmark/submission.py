"""What a benchmark submission is: a small protocol, and the adapter that makes any factory optimizer one.

A submission is a class, named in the suite by its dotted path, built once per trial as
``cls(**init_args, **hyperparameters)`` (the trial's point of the search space; nothing under the
self-tuning ruleset). The harness then calls, all optional (``Submission`` has the defaults):

* ``task_overrides(budget)``: ``--key value`` settings for the task config (the factory's
  ``model.optimizer`` and ``model.scheduler``, say);
* ``batch_size(budget)``: the training batch size for this workload (``data.batch_size``), None keeps it;
* ``configure_optimizers(module, budget)``: what a LightningModule's ``configure_optimizers`` returns,
  for the task's model and the step/time budget; None lets the task module build its own from the
  overrides (the common case);
* ``on_train_step_end(module)``: after every training batch, on the clock;
* ``prepare_for_eval(module)`` / ``after_eval(module)``: just before and after each evaluation, on the
  clock (AlgoPerf times ``prepare_for_eval`` too): swap in averaged weights and back, for example.

``FactorySubmission`` is the adapter: a registered optimizer name or a dotted path to a torch Optimizer
(``OptimizerConfig``), optionally a schedule, with the trial's hyperparameters mapped onto them. AlgoPerf's
names are understood (``learning_rate``, ``one_minus_beta1``, ``beta1``, ``beta2``, ``epsilon``,
``warmup_factor``), as are ``OptimizerConfig`` and ``SchedulerConfig`` fields, ``kwargs.<arg>`` for any
other constructor argument, ``fallback.<key>`` and ``switch.<key>`` for a composite's other optimizers,
and ``model.<key>`` / ``data.<key>`` for task settings (AlgoPerf's
``label_smoothing`` and ``dropout_rate`` are workload settings here: name them as ``model.<key>``).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from recipes.modules.config import as_config
from recipes.modules.errors import ConfigError
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.optim.settings import optimizer_dict

if TYPE_CHECKING:
    import lightning as L

__all__ = ["Budget", "Submission", "FactorySubmission", "load_submission_class", "build_submission", "FACTORY"]

FACTORY = "recipes.benchmark.submission.FactorySubmission"


@dataclass(frozen=True)
class Budget:
    """A trial's budget on its workload (under self-tuning already multiplied by the suite's factor)."""

    workload: str
    max_steps: int
    max_runtime: float


class Submission:
    """The protocol's defaults: subclass and override what the algorithm needs."""

    def __init__(self, **hyperparameters: Any) -> None:
        self.hyperparameters = hyperparameters

    def task_overrides(self, budget: Budget) -> dict[str, Any]:
        return {}

    def batch_size(self, budget: Budget) -> int | None:
        return None

    def configure_optimizers(self, module: "L.LightningModule", budget: Budget) -> Any:
        return None

    def on_train_step_end(self, module: "L.LightningModule") -> None:
        pass

    def prepare_for_eval(self, module: "L.LightningModule") -> None:
        pass

    def after_eval(self, module: "L.LightningModule") -> None:
        pass


_OPT_FIELDS = {f.name for f in fields(OptimizerConfig)}
_SCHED_FIELDS = {f.name for f in fields(SchedulerConfig)} - {"name"}
_ALIASES = {"learning_rate": "lr", "epsilon": "eps", "warmup_factor": "warmup_fraction"}
_BETAS = {"beta1", "one_minus_beta1", "beta2"}
_PARTS = ("fallback", "switch")


def _default_betas(name: str) -> tuple[float, float]:
    from recipes.modules.optim.registry import get_optimizer_info

    param = inspect.signature(get_optimizer_info(name).cls).parameters.get("betas")
    if param is None or not isinstance(param.default, (tuple, list)):
        raise ConfigError(
            f"optimizer {name!r} has no betas, but the search space sets beta1/beta2",
            "remove beta1, one_minus_beta1 and beta2 from its search space",
        )
    return float(param.default[0]), float(param.default[1])


class FactorySubmission(Submission):
    """A factory optimizer (and schedule) with the trial's hyperparameters applied: the common submission.

    Args:
        optimizer: ``OptimizerConfig`` keys: the name and every setting the search space does not sample.
        scheduler: ``SchedulerConfig`` keys; None keeps the task config's schedule.
        **hyperparameters: the trial's point (see the module docstring for the names understood).
    """

    def __init__(
        self, optimizer: dict[str, Any] | None = None, scheduler: dict[str, Any] | None = None, **hyperparameters: Any
    ) -> None:
        super().__init__(**hyperparameters)
        opt, sched, self.extra = dict(optimizer or {}), dict(scheduler) if scheduler is not None else None, {}
        kwargs = dict(opt.get("kwargs") or {})
        betas = None
        targets: dict[str, str] = {}
        for key, value in hyperparameters.items():
            part, dot, field_name = key.partition(".")
            if dot and part in _PARTS:  # fallback.learning_rate, switch.momentum: the nested optimizer's own
                sub, field_name = dict(opt.get(part) or {}), _ALIASES.get(field_name, field_name)
                if field_name in sub:
                    raise ConfigError(
                        f"hyperparameter {key!r} sets {part}.{field_name}, which the submission fixes",
                        "sample it or fix it, once",
                    )
                opt[part] = {**sub, field_name: value}
                continue
            name = _ALIASES.get(key, key)
            target = "betas[1]" if name == "beta2" else "betas[0]" if name in _BETAS else name
            fixed = (opt if name in _OPT_FIELDS else sched or {} if name in _SCHED_FIELDS else {}).get(name)
            fixed = opt.get("betas") if name in _BETAS else fixed
            if target in targets or fixed is not None or (name.startswith("kwargs.") and name[7:] in kwargs):
                raise ConfigError(
                    f"hyperparameter {key!r} sets {target}, which "
                    + (f"{targets[target]!r} also sets" if target in targets else "the submission fixes"),
                    "sample it or fix it, once",
                )
            if name.startswith(("model.optimizer", "model.scheduler")):
                raise ConfigError(
                    f"hyperparameter {key!r} would be overwritten by the factory's model.optimizer/model.scheduler",
                    "name the optimizer setting itself (e.g. weight_decay, kwargs.<arg>)",
                )
            targets[target] = key
            if name in _BETAS:
                if betas is None:
                    betas = list(opt.get("betas") or _default_betas(opt.get("name", "adamw")))
                if name == "beta2":
                    betas[1] = float(value)
                else:
                    betas[0] = float(value) if name == "beta1" else 1.0 - float(value)
            elif name in _OPT_FIELDS:
                opt[name] = value
            elif name in _SCHED_FIELDS:
                if sched is None:
                    raise ConfigError(
                        f"hyperparameter {key!r} sets the schedule, but the submission keeps the task's schedule",
                        "give the submission a scheduler (e.g. scheduler: {name: cosine})",
                    )
                sched[name] = value
            elif name.startswith("kwargs."):
                kwargs[name.removeprefix("kwargs.")] = value
            elif name.startswith(("model.", "data.")):
                self.extra[name] = value
            else:
                raise ConfigError(
                    f"the factory submission has no hyperparameter {key!r}",
                    "use learning_rate, weight_decay, one_minus_beta1, beta1, beta2, epsilon, momentum, warmup_factor, "
                    "an OptimizerConfig or SchedulerConfig field, kwargs.<arg>, or model.<key> / data.<key>",
                )
        if betas is not None:
            opt["betas"] = tuple(betas)
        if kwargs:
            opt["kwargs"] = kwargs
        # complete configs, checked now: nothing leaks in from the task config, a bad key is named
        self.optimizer = optimizer_dict(as_config(OptimizerConfig, opt))
        self.scheduler = asdict(as_config(SchedulerConfig, sched)) if sched is not None else None

    def task_overrides(self, budget: Budget) -> dict[str, Any]:
        out = {**self.extra, "model.optimizer": self.optimizer}
        if self.scheduler is not None:
            out["model.scheduler"] = self.scheduler
        return out


def load_submission_class(path: str) -> type:
    """The class at dotted ``path``, checked to be a class; one error line otherwise."""
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"submission {path!r} cannot be imported ({exc})", "give a dotted path to a class") from None
    if not inspect.isclass(cls):
        raise ConfigError(f"submission {path!r} is not a class", "give a dotted path to a Submission class")
    return cls


def build_submission(path: str, init_args: dict[str, Any], hyperparameters: dict[str, Any]) -> Any:
    """``cls(**init_args, **hyperparameters)``; a name the class does not take is one error line."""
    both = sorted(set(init_args) & set(hyperparameters))
    if both:
        raise ConfigError(
            f"submission {path}: {', '.join(both)} both fixed and in the search space", "keep each in one place"
        )
    cls = load_submission_class(path)
    try:
        inspect.signature(cls).bind(**init_args, **hyperparameters)
    except TypeError as exc:
        raise ConfigError(
            f"submission {path} does not take these arguments ({exc})",
            "match the search space's names to its constructor",
        ) from None
    return cls(**init_args, **hyperparameters)
