"""The benchmark report: Markdown tables and PNG plots from a results file.

    recipes benchmark report runs/benchmark/small/results.jsonl --out docs/benchmark_small

writes ``report.md``, per ruleset found in the results (each scored on its own, as AlgoPerf scores its
two rulesets): performance-profile scores and speedups against the baseline, per workload the time of each
submission (the median over studies of each study's fastest trial), every study's time, every trial with
its sampled hyperparameters, plus ``curves_<workload>.png`` (the metric against training seconds of each
study's fastest trial, median and min-max band over studies), ``lr_<workload>.png`` (every trial's best
metric against its sampled learning rate) and ``profile.png``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recipes.benchmark.results import write_text_atomic  # noqa: E402
from recipes.benchmark.scoring import (  # noqa: E402
    Score,
    by_ruleset,
    geomean_speedup,
    performance_ratios,
    profile,
    profile_score,
    summarize,
)
from recipes.modules.errors import ConfigError  # noqa: E402

__all__ = ["write_report"]

RULESET_TITLES = {"external_tuning": "External-tuning ruleset", "self_tuning": "Self-tuning ruleset"}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isinf(x):
            return "inf"
        if math.isnan(x):
            return "n/a"
        return f"{x:.{digits}g}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(fig: plt.Figure, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def _hp(hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(hp.items())) or "-"


def _shown_trials(score: Score) -> list[dict[str, Any]]:
    """Per study, the trial that counts (the fastest at the target), else the study's best by metric."""
    sign = 1 if score.mode == "max" else -1
    out, fastest = [], score.fastest()
    for s, ts in score.studies().items():
        t = fastest[s] or max(ts, key=lambda t: sign * (t.best if t.best is not None else -sign * math.inf))
        out.append(t.record)
    return out


def _curves_plot(workload: str, row: dict[str, Score], target: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for sub, score in sorted(row.items()):
        curves = [
            (np.asarray(r["curve"]["time"]), np.asarray(r["curve"]["metric"], dtype=float))
            for r in _shown_trials(score)
            if r["curve"]["time"]
        ]
        if not curves:
            continue
        grid = np.linspace(0, max(t[-1] for t, _ in curves), 200)
        # the value at each grid time is the last evaluation at or before it (a run that stopped holds its value)
        vals = np.stack([m[np.clip(np.searchsorted(t, grid, side="right") - 1, 0, None)] for t, m in curves])
        vals = np.where(np.isfinite(vals), vals, np.nan)
        line = ax.plot(grid, np.nanmedian(vals, axis=0), label=sub)[0]
        if len(curves) > 1:
            ax.fill_between(grid, np.nanmin(vals, axis=0), np.nanmax(vals, axis=0), color=line.get_color(), alpha=0.2)
    ax.axhline(target["value"], color="k", ls="--", lw=1, label=f"target {target['value']:g}")
    ax.set(
        xlabel="training seconds (evaluation excluded)",
        ylabel=target["metric"],
        title=f"{workload}: each study's fastest trial, median and min-max over studies",
    )
    if target["metric"].endswith(("dist_to_opt", "loss", "mse")):
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    _save(fig, path)


def _profile_plot(ratios: dict[str, dict[str, float]], tau_max: float, path: Path) -> None:
    taus = np.linspace(1, tau_max, 301)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for sub, rho in sorted(profile(ratios, taus).items()):
        ax.step(taus, rho, where="post", label=sub)
    ax.set(
        xlabel="tau (time / fastest time)",
        ylabel="fraction of workloads",
        title="performance profile",
        ylim=(-0.02, 1.02),
    )
    ax.legend(fontsize=7)
    _save(fig, path)


def _lr_plot(workload: str, row: dict[str, Score], target: dict, path: Path) -> bool:
    """Every trial's best metric against its learning rate (filled: reached the target); False if none has an lr."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    drawn = False
    for sub, score in sorted(row.items()):
        pts = [(t.lr, t.best, math.isfinite(t.time)) for t in score.trials if t.lr and t.best is not None]
        pts = [p for p in pts if math.isfinite(p[1])]
        if not pts:
            continue
        drawn = True
        color = ax.scatter([], [], label=sub).get_facecolor()[0]
        for lr, best, hit in pts:
            ax.scatter([lr], [best], color=color, facecolors=color if hit else "none", s=28)
    ax.axhline(target["value"], color="k", ls="--", lw=1, label=f"target {target['value']:g}")
    ax.set(xscale="log", xlabel="learning rate (sampled)", ylabel=f"best {target['metric']}")
    ax.set_title(f"{workload}: every trial (filled: reached the target)")
    if target["metric"].endswith(("dist_to_opt", "loss", "mse")):
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    _save(fig, path)
    return drawn


def _ruleset_section(
    ruleset: str, records: list[dict[str, Any]], out: Path, prefix: str, baseline: str, tau_max: float
) -> list[str]:
    summary = summarize(records)
    times = {w: {s: c.time for s, c in row.items()} for w, row in summary.items()}
    budgets = {w: next(iter(row.values())).max_runtime for w, row in summary.items()}
    ratios = performance_ratios(times, tau_max)
    scores = profile_score(ratios, tau_max)
    subs = sorted({s for row in summary.values() for s in row}, key=lambda s: (-scores.get(s, 0), s))
    # with an initializer grid the baseline is its run under PyTorch's default initializer when there is one
    crossed = sorted(
        (s for s in subs if s.startswith(f"{baseline} + ")), key=lambda s: (s != f"{baseline} + default", s)
    )
    base = baseline if baseline in subs else next(iter(crossed), None)
    if base is None:
        raise ConfigError(
            f"baseline {baseline!r} has no trials in these results", f"use one of {', '.join(sorted(subs))}"
        )
    speed = geomean_speedup(times, base, budgets) if base else {}
    studies = sorted({r["study"] for r in records})
    trials = Counter((r["workload"], r["optimizer"], r["init"], r["study"]) for r in records)
    md = [
        f"## {RULESET_TITLES.get(ruleset, ruleset)}",
        "",
        f"{len(records)} trials in {len(studies)} studies (up to {max(trials.values())} trials per study). "
        "A study's time is its fastest trial's at the target; a workload's time is the median over studies "
        "(a study with no trial at the target is infinite).",
        "",
        f"Performance-profile score = normalized area under rho(tau) for tau in [1, {tau_max:g}] "
        f"(1 = fastest on every workload). Speedup = geometric mean over workloads of t({base}) / t, "
        "a miss counting as the workload's max_runtime.",
        "",
        _table(
            ["submission", "profile score", f"speedup vs {base}", "workloads"],
            [[s, scores.get(s, 0.0), speed.get(s, (math.nan, 0))[0], speed.get(s, (math.nan, 0))[1]] for s in subs],
        ),
        "",
        f"![performance profile]({prefix}profile.png)",
        "",
    ]
    _profile_plot(ratios, tau_max, out / f"{prefix}profile.png")
    targets = {r["workload"]: r["target"] for r in records}
    for w, row in summary.items():
        t, slug = targets[w], f"{prefix}{_slug(w)}"
        budget = next(iter(row.values())).trials[0].record.get("budget", {})
        md += [
            f"### Workload `{w}`",
            "",
            f"Target: {t['metric']} {'>=' if t['mode'] == 'max' else '<='} {t['value']:g}; budget "
            f"{budget.get('max_steps')} steps or {_fmt(budget.get('max_runtime'))} s of training.",
            "",
        ]
        rows = []
        for s in sorted(row, key=lambda s: (row[s].time, s)):
            c = row[s]
            fastest = c.fastest()
            per = ", ".join(_fmt(x) for x in c.study_times().values())
            counted = [f"{k}: {_hp(v.hyperparameters)}" for k, v in fastest.items() if v is not None]
            hit = sum(math.isfinite(x.time) for x in c.trials)
            rows.append(
                [
                    s,
                    c.time,
                    ratios[w][s],
                    per,
                    f"{c.studies_reached}/{len(c.study_times())}",
                    f"{hit}/{len(c.trials)}",
                    c.best_metric(),
                    "; ".join(counted) or "-",
                ]
            )
        md.append(
            _table(
                [
                    "submission",
                    "time (s)",
                    "ratio",
                    "study times (s)",
                    "studies reached",
                    "trials reached",
                    "median best",
                    "trial counted per study",
                ],
                rows,
            )
        )
        _curves_plot(w, row, t, out / f"curves_{slug}.png")
        md += ["", f"![{w} curves](curves_{slug}.png)", ""]
        if _lr_plot(w, row, t, out / f"lr_{slug}.png"):
            md += [f"![{w} learning rates](lr_{slug}.png)", ""]
        md += [f"<details><summary>Every trial on {w}</summary>", ""]
        md.append(
            _table(
                ["submission", "study", "trial", "hyperparameters", "status", "time (s)", "steps", "best"],
                [
                    [s, x.study, x.trial, _hp(x.hyperparameters), x.status, x.time, x.steps, x.best]
                    for s, c in sorted(row.items())
                    for x in sorted(c.trials, key=lambda x: (x.study, x.trial))
                ],
            )
        )
        md += ["", "</details>", ""]
        inits = sorted({r.get("init") for r in records if r["workload"] == w})
        if len(inits) > 1:
            opts = sorted({r["optimizer"] for r in records if r["workload"] == w})
            cell = {(s.split(" + ")[0], s.split(" + ")[1] if " + " in s else "task default"): c for s, c in row.items()}
            md += ["Submission x initializer (time in s; studies reached):", ""]

            def entry(c: Score | None) -> str:
                return f"{_fmt(c.time)} ({c.studies_reached}/{len(c.study_times())})" if c else "-"

            md.append(_table(["submission"] + inits, [[o] + [entry(cell.get((o, i))) for i in inits] for o in opts]))
            md.append("")
    return md


def write_report(
    records: list[dict[str, Any]],
    out_dir: str | os.PathLike,
    baseline: str = "adamw",
    tau_max: float = 4.0,
    title: str = "Optimizer benchmark",
) -> Path:
    """Write ``report.md`` and the plots for ``records`` into ``out_dir``; returns the report's path."""
    records = [r for r in records if r.get("rank_zero", True)]
    if not records:
        raise ConfigError("the results file holds no runs", "run recipes benchmark --config <suite> first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    envs = sorted({f"{r.get('env', {}).get('device')} ({r.get('env', {}).get('host')})" for r in records})
    errors = [r for r in records if r["status"] == "error"]
    md = [
        f"# {title}",
        "",
        f"{len(records)} runs; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r["status"] for r in records).items()))
        + ".",
        "Devices: "
        + "; ".join(envs)
        + (" (times from different machines are not comparable)" if len(envs) > 1 else "")
        + ".",
        "",
        "Time-to-target is training time in seconds (evaluation excluded) until the first evaluation at the "
        "target; a trial that missed it within the budget or diverged counts as infinite.",
        "",
    ]
    groups = by_ruleset(records)
    for ruleset, recs in groups.items():
        prefix = "" if len(groups) == 1 else f"{ruleset}_"
        md += _ruleset_section(ruleset, recs, out, prefix, baseline, tau_max)
    if errors:
        md += [
            "## Runs that failed to run",
            "",
            "Retried on the next `recipes benchmark` with the same suite.",
            "",
        ]
        md.append(
            _table(
                ["workload", "submission", "study", "trial", "error"],
                [
                    [r["workload"], r["optimizer"], r.get("study"), r.get("trial"), (r.get("error") or "")[:120]]
                    for r in errors
                ],
            )
        )
    path = out / "report.md"
    write_text_atomic(path, "\n".join(md) + "\n")
    return path
