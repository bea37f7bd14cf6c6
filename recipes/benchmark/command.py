"""``python -m recipes benchmark``: run a suite, resume it, report on it, merge results.

    python -m recipes benchmark --config benchmark/small [--seeds '[0]'] [--only '[regression]']
    python -m recipes benchmark report RESULTS.jsonl [--out DIR] [--baseline adamw]
    python -m recipes benchmark merge A.jsonl B.jsonl --out MERGED.jsonl

A run whose key is already in the results file (reached, missed or diverged) is skipped, so a killed
benchmark picks up where it stopped; a run that failed with an error is tried again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser
from rich.console import Console

from recipes.benchmark.results import append_result, environment, finished_keys, load_results, merge_results
from recipes.benchmark.suite import Run, Suite
from recipes.config_files import resolve_config
from recipes.messages import format_error
from recipes.modules.errors import ConfigError, RecipeError

__all__ = ["benchmark_command", "suite_parser", "load_suite"]

console = Console(width=160, highlight=False)


def suite_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m recipes benchmark",
        exit_on_error=False,
        description="Benchmark optimizers on a suite of workloads.",
    )
    parser.add_argument(
        "--config", action=ActionConfigFile, help="the suite: a shipped name (benchmark/small) or a YAML file"
    )
    parser.add_class_arguments(Suite)
    parser.add_argument("--only", type=list[str] | None, default=None, help="run only these workloads")
    parser.add_argument(
        "--report_dir", type=str | None, default=None, help="where the report goes (default: beside the results)"
    )
    parser.add_argument(
        "--dry_run", type=bool, default=False, help="list the runs and whether each is done, train nothing"
    )
    return parser


def _suite_dir(args: list[str]) -> Path | None:
    """The folder of the first ``--config`` file (the suite; later ones are overrides): workloads' relative
    config paths are relative to it."""
    for i, arg in enumerate(args):
        key, eq, val = arg.partition("=")
        if key in ("--config", "-c") and (eq or i + 1 < len(args)):
            path = Path(val if eq else args[i + 1])
            if path.is_file():
                return path.resolve().parent
    return None


def load_suite(args: list[str]) -> tuple[Suite, dict]:
    parser = suite_parser()
    try:
        cfg = parser.parse_args(args)
        init = parser.instantiate(cfg)
    except Exception as exc:  # jsonargparse reports parse and validation errors as several types
        if isinstance(exc, RecipeError):
            raise
        raise ConfigError(
            format_error(exc).removeprefix(RecipeError.PREFIX + " ").split(". Fix:")[0],
            "see python -m recipes benchmark --help",
        ) from None
    base = _suite_dir(args)
    for w in init.workloads:  # a shipped name, or a path relative to the suite file (never to the working folder)
        w.config = str(resolve_config(w.config, f"workload {w.name!r}: config", base=base))
    suite = Suite(**{f.name: getattr(init, f.name) for f in fields(Suite)})
    return suite, {"only": init.only, "report_dir": init.report_dir, "dry_run": init.dry_run}


def run_suite(
    suite: Suite, only: list[str] | None = None, dry_run: bool = False, report_dir: str | None = None
) -> list[dict]:
    """Train every run of ``suite`` not already in its results file; returns all records of the file."""
    from recipes.benchmark import runner  # Lightning, and matplotlib for the report: imported only when used
    from recipes.benchmark.report import write_report

    runs = suite.runs(only)
    done = finished_keys(load_results(suite.results))
    todo = [r for r in runs if r.key not in done]
    console.print(
        f"suite [bold]{suite.name}[/]: {len(runs)} runs, {len(runs) - len(todo)} already in {suite.results}, "
        f"{len(todo)} to train"
    )
    if dry_run:
        for r in runs:
            console.print(
                f"  {'done' if r.key in done else 'todo'}  {r.workload.name:14s} {r.label:22s} lr {r.lr:<8g} "
                f"init {r.init_label:14s} seed {r.seed}  key {r.key}"
            )
        return load_results(suite.results)
    env = environment(str(suite.trainer.get("accelerator", "auto")))
    start = time.perf_counter()
    for i, run in enumerate(todo, 1):
        train = train_isolated if suite.isolated else runner.train_run
        rec = train(run, suite.stop_at_target)
        rec.update({"suite": suite.name, "env": env})
        if rec["rank_zero"]:
            append_result(suite.results, rec)
        best = "-" if rec["best"] is None else f"{rec['best']:.4g}"
        what = (
            f"at step {rec['steps_to_target']} in {rec['time_to_target']:.1f} s"
            if rec["status"] == "reached"
            else (rec.get("error") or "")[:100]
        )
        console.print(
            f"[{i}/{len(todo)}] {run.workload.name} {run.label} lr {run.lr:g} init {run.init_label} seed {run.seed}: "
            f"[bold]{rec['status']}[/] {what} (best {best}, {rec['wall_time']:.1f} s wall)"
        )
    console.print(f"trained {len(todo)} runs in {time.perf_counter() - start:.0f} s")
    records = load_results(suite.results)
    if records:
        out = report_dir or str(Path(suite.results).parent / "report")
        path = write_report(
            records, out, suite.baseline, suite.tau_max, title=f"Optimizer benchmark: suite {suite.name}"
        )
        console.print(f"report: {path}")
    return records


def train_isolated(run: Run, stop_at_target: bool) -> dict:
    """``run`` in a fresh ``python -m recipes.benchmark.worker`` process (see that module)."""
    from recipes.benchmark.runner import base_record

    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "run.json", Path(tmp) / "record.json"
        spec.write_text(json.dumps({"run": run.to_dict(), "stop_at_target": stop_at_target}))
        proc = subprocess.run(
            [sys.executable, "-m", "recipes.benchmark.worker", str(spec), str(out)], capture_output=True, text=True
        )
        if out.is_file():
            return json.loads(out.read_text())
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {
        **base_record(run),
        "status": "error",
        "error": f"worker exited {proc.returncode}: {tail[0]}",
        "rank_zero": True,
        "best": None,
        "final": None,
        "steps_to_target": None,
        "time_to_target": None,
        "steps": 0,
        "curve": {"step": [], "time": [], "metric": [], "loss": []},
        "wall_time": 0.0,
        "train_time": 0.0,
        "eval_time": 0.0,
    }


def _report(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes benchmark report")
    p.add_argument("results")
    p.add_argument("--out", default=None, help="output folder (default: report/ beside the results)")
    p.add_argument("--baseline", default="adamw")
    p.add_argument("--tau_max", type=float, default=4.0)
    p.add_argument("--title", default="Optimizer benchmark")
    a = p.parse_args(args)
    from recipes.benchmark.report import write_report

    if not Path(a.results).is_file():
        raise ConfigError(
            f"no results file {a.results}",
            "run python -m recipes benchmark --config <suite> first, or give its results path",
        )
    path = write_report(
        load_results(a.results), a.out or str(Path(a.results).parent / "report"), a.baseline, a.tau_max, a.title
    )
    console.print(f"report: {path}")
    return 0


def _merge(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes benchmark merge")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    a = p.parse_args(args)
    n, dropped = merge_results(a.inputs, a.out)
    console.print(f"merged {len(a.inputs)} files into {a.out}: {n} runs ({dropped} duplicates dropped)")
    return 0


def benchmark_command(args: list[str]) -> int:
    """Entry point of ``python -m recipes benchmark``."""
    if args and args[0] == "report":
        return _report(args[1:])
    if args and args[0] == "merge":
        return _merge(args[1:])
    if not args or args[0] in ("-h", "--help"):
        if args:
            suite_parser().print_help()
            return 0
        raise ConfigError("benchmark needs a suite", "use: python -m recipes benchmark --config benchmark/small")
    suite, opts = load_suite(args)
    run_suite(suite, **opts)
    return 0
