"""Train one benchmark run with the ordinary Lightning trainer and record its curve and time-to-target.

The task config is built by the same CLI as ``python -m recipes fit`` (so precision, devices and strategy
options behave identically), with the run's optimizer, schedule, initializer, seed and budget set on top.
``TargetRecorder`` times training only: evaluation time is measured and excluded, as in AlgoPerf.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from argparse import ArgumentError
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from recipes.benchmark.submission import build_submission
from recipes.benchmark.suite import Run
from recipes.messages import format_error
from recipes.modules.errors import ConfigError, RecipeError, TrainingDiverged

__all__ = ["TargetRecorder", "base_record", "run_args", "train_run"]


class TargetRecorder(Callback):
    """Records (step, training seconds, metric, train loss) at every evaluation; stops at the target
    (optionally) or when the time budget is spent; calls the submission's on-the-clock hooks.

    Training time is wall time since training started minus evaluation time. The submission's
    ``prepare_for_eval`` runs before the clock pauses and ``after_eval`` after it restarts, so both are
    charged to training, as AlgoPerf charges ``prepare_for_eval``. With ``eval_every_seconds`` the
    evaluations follow training time (AlgoPerf's ``eval_period_time_sec``): rank zero decides and every rank
    follows, so a multi-device run never splits on the decision.
    """

    def __init__(
        self,
        metric: str,
        reached,
        max_runtime: float = 0.0,
        stop_at_target: bool = True,
        submission: Any = None,
        eval_every_seconds: float = 0.0,
    ) -> None:
        self.metric, self.reached, self.max_runtime, self.stop_at_target = metric, reached, max_runtime, stop_at_target
        self.submission, self.eval_every_seconds = submission, eval_every_seconds
        self.curve: dict[str, list[float]] = {"step": [], "time": [], "metric": [], "loss": []}
        self.hit: tuple[int, float] | None = None
        self.diverged = False
        self._start = 0.0
        self._eval_start = 0.0
        self._last_eval = 0.0  # training seconds at the end of the last evaluation
        self.eval_time = 0.0

    @staticmethod
    def _sync(pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def train_time(self) -> float:
        return time.perf_counter() - self._start - self.eval_time

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.submission is not None:
            self.submission.on_train_step_end(pl_module)
        if not self.max_runtime and not self.eval_every_seconds:
            return
        now = self.train_time()
        # rank zero's clock decides for every rank: ranks that split on a stop or an evaluation would hang
        spent, due = trainer.strategy.broadcast(
            (
                bool(self.max_runtime) and now > self.max_runtime,
                bool(self.eval_every_seconds) and now - self._last_eval >= self.eval_every_seconds,
            )
        )
        if spent:
            trainer.should_stop = True
        if self.eval_every_seconds:
            # Lightning's time-based val_check_interval decides per rank from its own clock; this pins its
            # decision to rank zero's (due: the interval is over; not due: never yet)
            trainer._last_val_time = -math.inf if due else math.inf

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.submission is not None:
            self.submission.prepare_for_eval(pl_module)
        self._sync(pl_module)
        self._eval_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        elapsed = self._eval_start - self._start - self.eval_time  # training seconds up to this evaluation
        self._sync(pl_module)
        self.eval_time += time.perf_counter() - self._eval_start
        if self.submission is not None:
            self.submission.after_eval(pl_module)
        self._last_eval = self.train_time()
        if self.metric not in trainer.callback_metrics:
            raise ConfigError(
                f"the workload's metric {self.metric!r} was not logged",
                f"logged metrics: {', '.join(sorted(trainer.callback_metrics))}",
            )
        value = float(trainer.callback_metrics[self.metric])
        loss = trainer.callback_metrics.get("train/loss")
        for k, v in (
            ("step", trainer.global_step),
            ("time", elapsed),
            ("metric", value),
            ("loss", float(loss) if loss is not None else math.nan),
        ):
            self.curve[k].append(v)
        if not math.isfinite(value):
            self.diverged = True
            trainer.should_stop = True
        elif self.hit is None and self.reached(value) and not (self.max_runtime and elapsed > self.max_runtime):
            self.hit = (trainer.global_step, elapsed)
            if self.stop_at_target:
                trainer.should_stop = True


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run_args(run: Run) -> list[str]:
    """The ``python -m recipes fit`` arguments of ``run``: task config, then the benchmark's settings."""
    w = run.workload
    args = [
        "--config",
        w.config,
        "--seed_everything",
        str(run.seed),
        "--trainer.max_steps",
        str(w.max_steps),
        "--trainer.max_epochs",
        "-1",
        "--trainer.val_check_interval",
        json.dumps({"milliseconds": max(1, round(w.eval_every_seconds * 1000))})
        if w.eval_every_seconds
        else str(w.eval_every_n_steps),
        "--trainer.check_val_every_n_epoch",
        "null",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.logger",
        "false",
        "--trainer.enable_checkpointing",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    ]
    trainer = {f"trainer.{k}": v for k, v in run.trainer.items()}
    for key, value in {**w.overrides, **trainer, **run.overrides}.items():
        args += [f"--{key}", _cli_value(value)]
    if run.init:
        args += ["--model.init", json.dumps(run.init)]
    return args


@contextmanager
def _quiet() -> Iterator[None]:
    """Lightning's per-run chatter (devices, summaries) off while the benchmark prints one line a run."""
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric", "recipes")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
            warnings.filterwarnings("ignore", message=".*treespec.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def base_record(run: Run) -> dict[str, Any]:
    """What identifies a run in the results file: its key, names, target and full config."""
    w = run.workload
    return {
        "key": run.key,
        "workload": w.name,
        "optimizer": run.label,
        "init": run.init_label,
        "ruleset": run.ruleset,
        "study": run.study,
        "trial": run.trial,
        "hyperparameters": run.hyperparameters,
        "lr": run.lr,
        "seed": run.seed,
        "target": {"metric": w.metric, "mode": w.mode, "value": w.target},
        "budget": {"max_steps": w.max_steps, "max_runtime": w.max_runtime},
        "config": run.spec,
    }


def _use_submission(module: L.LightningModule, submission: Any, run: Run) -> None:
    """The module's ``configure_optimizers`` asks the submission first; None falls back to the module's own."""
    own = module.configure_optimizers

    def configure_optimizers() -> Any:
        built = submission.configure_optimizers(module, run.budget)
        return own() if built is None else built

    module.configure_optimizers = configure_optimizers


def train_run(run: Run, stop_at_target: bool = True) -> dict[str, Any]:
    """Train ``run`` and return its record (status reached | missed | diverged | error, never dropped)."""
    from recipes.cli import build_cli

    w = run.workload
    rec = base_record(run)
    submission = build_submission(run.submission, run.arguments, run.hyperparameters)
    recorder = TargetRecorder(w.metric, w.reached, w.max_runtime, stop_at_target, submission, w.eval_every_seconds)
    wall = time.perf_counter()
    status, error = "missed", None
    with _quiet():
        try:
            cli = build_cli(run_args(run), run=False)
            _use_submission(cli.model, submission, run)
            cli.trainer.callbacks.append(recorder)
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
            rec["accelerator"] = cli.trainer.accelerator.__class__.__name__
            is_zero = cli.trainer.is_global_zero
        except TrainingDiverged:
            status, is_zero = "diverged", True
        except RecipeError:
            raise
        except ArgumentError as exc:  # a workload override, trainer key or task setting the task config refuses
            raise ConfigError(format_error(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any other failure is recorded and retried on the next resume
            status, error, is_zero = "error", f"{type(exc).__name__}: {exc}", True
    if recorder.diverged:
        status = "diverged"
    elif recorder.hit is not None and status == "missed":
        status = "reached"
    metrics = recorder.curve["metric"]
    finite = [m for m in metrics if math.isfinite(m)]
    best = (max(finite) if w.mode == "max" else min(finite)) if finite else None
    rec.update(
        {
            "status": status,
            "error": error,
            "rank_zero": is_zero,
            "steps_to_target": recorder.hit[0] if recorder.hit else None,
            "time_to_target": recorder.hit[1] if recorder.hit else None,
            "best": best,
            "final": metrics[-1] if metrics else None,
            "steps": recorder.curve["step"][-1] if recorder.curve["step"] else 0,
            "train_time": recorder.train_time() if recorder._start else 0.0,
            "eval_time": recorder.eval_time,
            "wall_time": time.perf_counter() - wall,
            "curve": recorder.curve,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    return rec
