"""``recipes benchmark``: run a suite, resume it, set its targets, report on it, merge results.

    recipes benchmark --config benchmark/small [--studies 1] [--only '[regression]'] [--executor ray]
    recipes benchmark targets --config benchmark/small [--out small_targets.yaml]
    recipes benchmark report RESULTS.jsonl [--out DIR] [--baseline adamw]
    recipes benchmark merge A.jsonl B.jsonl --out MERGED.jsonl

A run whose key is already in the results file (reached, missed or diverged) is skipped, so a killed
benchmark picks up where it stopped; a run that failed with an error is tried again. The driver alone
writes the results file, whichever executor trains the runs.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ActionConfigFile, ArgumentParser
from rich.console import Console

from recipes.benchmark.results import append_result, finished_keys, load_results, merge_results, write_text_atomic
from recipes.benchmark.scoring import summarize
from recipes.benchmark.suite import Suite
from recipes.config_files import config_id, resolve_config
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
    parser.add_argument(
        "--executor",
        type=Literal["sequential", "ray"],
        default="sequential",
        help="sequential: one run after another here; ray: each run a Ray task on a cluster (--ray_address)",
    )
    parser.add_argument(
        "--ray_address",
        type=str,
        default="auto",
        help="auto: the running cluster (ray start --head); ray://host:10001: Ray Client; local: a private "
        "instance on 127.0.0.1",
    )
    return parser


def _suite_file(args: list[str]) -> Path | None:
    """The first ``--config`` file (the suite; later ones are overrides)."""
    for i, arg in enumerate(args):
        key, eq, val = arg.partition("=")
        if key in ("--config", "-c") and (eq or i + 1 < len(args)):
            path = Path(val if eq else args[i + 1])
            if path.is_file():
                return path.resolve()
    return None


def _suite_dir(args: list[str]) -> Path | None:
    """The suite file's folder: workloads' relative config paths are relative to it."""
    path = _suite_file(args)
    return path.parent if path else None


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
    for o in init.submissions:  # a search-space file is relative to the suite file too
        if isinstance(o.search_space, str) and base is not None and not Path(o.search_space).expanduser().is_absolute():
            o.search_space = str(base / o.search_space)
    suite = Suite(**{f.name: getattr(init, f.name) for f in fields(Suite)})
    opts = {k: getattr(init, k) for k in ("only", "report_dir", "dry_run", "executor", "ray_address")}
    return suite, opts


def _describe(run) -> str:
    hp = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.hyperparameters.items())
    init = "" if run.init_label == "task default" else f" init {run.init_label}"
    return f"{run.workload.name} {run.label}{init} study {run.study} trial {run.trial}" + (f" ({hp})" if hp else "")


def run_suite(
    suite: Suite,
    only: list[str] | None = None,
    dry_run: bool = False,
    report_dir: str | None = None,
    executor: str = "sequential",
    ray_address: str = "auto",
    report: bool = True,
) -> list[dict]:
    """Train every run of ``suite`` not already in its results file; returns all records of the file."""
    from recipes.benchmark.executors import RayExecutor, run_sequential

    runs = suite.runs(only)
    done = finished_keys(load_results(suite.results))
    todo = [r for r in runs if r.key not in done]
    console.print(
        f"suite [bold]{suite.name}[/] ({suite.ruleset}, {suite.studies} studies x {suite.trials_per_study} trials): "
        f"{len(runs)} runs, {len(runs) - len(todo)} already in {suite.results}, {len(todo)} to train"
    )
    if dry_run:
        for r in runs:
            console.print(f"  {'done' if r.key in done else 'todo'}  {_describe(r)}  key {r.key}")
        return load_results(suite.results)
    start = time.perf_counter()
    if executor == "ray" and todo:
        pool = RayExecutor(ray_address)
        stream = pool.map(todo, suite.stop_at_target, suite.isolated)
    else:
        pool, stream = None, run_sequential(todo, suite.stop_at_target, suite.isolated)
    try:
        for i, (run, rec) in enumerate(stream, 1):
            rec["suite"] = suite.name
            if rec["rank_zero"]:
                append_result(suite.results, rec)  # the driver alone writes the file, one record at a time
            best = "-" if rec["best"] is None else f"{rec['best']:.4g}"
            what = (
                f"at step {rec['steps_to_target']} in {rec['time_to_target']:.1f} s"
                if rec["status"] == "reached"
                else (rec.get("error") or "")[:100]
            )
            console.print(
                f"[{i}/{len(todo)}] {_describe(run)}: [bold]{rec['status']}[/] {what} "
                f"(best {best}, {rec['wall_time']:.1f} s wall)"
            )
    finally:
        if pool is not None:
            pool.close()
    console.print(f"trained {len(todo)} runs in {time.perf_counter() - start:.0f} s")
    keys = {r.key for r in runs}
    records = [r for r in load_results(suite.results) if r["key"] in keys]  # this suite's trials, not old ones
    if records and report:
        from recipes.benchmark.report import write_report  # matplotlib only when a report is written

        out = report_dir or str(Path(suite.results).parent / "report")
        path = write_report(
            records, out, suite.baseline, suite.tau_max, title=f"Optimizer benchmark: suite {suite.name}"
        )
        console.print(f"report: {path}")
    return records


def target_values(records: list[dict[str, Any]]) -> dict[str, float]:
    """workload -> the best validation metric reached by the median study (AlgoPerf's target setting: per
    study the best value over its trials, then the median over studies), for one submission's trials."""
    best = {w: score.best_metric() for w, row in summarize(records).items() for score in row.values()}
    return {w: v for w, v in best.items() if math.isfinite(v)}  # no finite metric at all: the target stays


def _targets(args: list[str]) -> int:
    """``recipes benchmark targets --config SUITE [--out FILE] [--submission LABEL]``: AlgoPerf's target
    setting. The submission (the suite's baseline by default) is tuned over its search space with the suite's
    studies and trials, each trial using its whole budget; each workload's target becomes the best
    validation metric reached by the median study, written into a copy of the suite."""
    import yaml

    out, label, rest = None, None, []
    it = iter(args)
    for a in it:
        if a in ("--out", "--submission"):
            value = next(it, None)
            if value is None:
                raise ConfigError(f"{a} needs a value", "e.g. --out small_targets.yaml")
            out, label = (value, label) if a == "--out" else (out, value)
        else:
            rest.append(a)
    suite, opts = load_suite(rest)
    suite_file = _suite_file(rest)
    if suite_file is None:
        raise ConfigError("targets needs the suite as a file", "use: recipes benchmark targets --config SUITE")
    if suite.ruleset != "external_tuning":
        raise ConfigError(
            "target setting tunes a submission over its search space: the suite is self-tuning",
            "run targets on an external-tuning suite with the same workloads",
        )
    label = label or suite.baseline
    chosen = [o for o in suite.submissions if o.name == label]
    if not chosen:
        raise ConfigError(
            f"no submission {label!r} in the suite", f"use one of {', '.join(o.name for o in suite.submissions)}"
        )
    results = Path(suite.results)
    tuned = replace(
        suite,
        submissions=chosen,
        baseline=label,
        ruleset="external_tuning",
        stop_at_target=False,
        results=str(results.with_name(f"{results.stem}.targets{results.suffix}")),
    )
    records = run_suite(tuned, report=False, **opts)
    if opts["dry_run"]:
        return 0
    runs = tuned.runs(opts["only"])
    finished = {r["key"]: r for r in records if r["status"] != "error"}
    missing = [r for r in runs if r.key not in finished]
    if missing:
        raise ConfigError(
            f"{len(missing)} of {len(runs)} target-setting trials have no result (failed: see the log above)",
            "run the same targets command again: finished trials are kept, failed ones are retried",
        )
    values = target_values([finished[r.key] for r in runs])
    base = suite_file.parent
    data = yaml.safe_load(suite_file.read_text())
    resolved = {w.name: w.config for w in suite.workloads}
    for w in data["workloads"]:
        if w["name"] in values:
            w["target"] = float(f"{values[w['name']]:.6g}")
        if not config_id(resolved[w["name"]]).startswith("configs/"):  # a shipped config keeps its name
            w["config"] = str(Path(resolved[w["name"]]).resolve())  # the copy may live elsewhere
    for o in data.get("submissions", []):
        if isinstance(o.get("search_space"), str) and not Path(o["search_space"]).is_absolute():
            o["search_space"] = str((base / o["search_space"]).resolve())
    path = Path(out or f"{data.get('name', 'suite')}_targets.yaml")
    # new targets are new trials: their own results file, never mixed with the old suite's
    data["results"] = str(results.with_name(f"{results.stem}.{path.stem}{results.suffix}"))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    header = (
        f"# {suite_file.name} with targets set by `recipes benchmark targets` on {stamp}: {label} tuned over "
        f"its search space, {tuned.studies} studies x {tuned.trials} trials, full budgets;\n"
        "# each target is the best validation metric of the median study (AlgoPerf's target setting).\n"
    )
    write_text_atomic(path, header + yaml.safe_dump(data, sort_keys=False))
    for w, v in values.items():
        console.print(f"{w}: target {v:.6g}")
    console.print(f"suite with targets: {path}")
    return 0


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
    if args and args[0] == "targets":
        return _targets(args[1:])
    if not args or args[0] in ("-h", "--help"):
        if args:
            suite_parser().print_help()
            return 0
        raise ConfigError("benchmark needs a suite", "use: recipes benchmark --config benchmark/small")
    suite, opts = load_suite(args)
    run_suite(suite, **opts)
    return 0
