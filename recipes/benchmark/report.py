"""The benchmark report: Markdown tables and PNG plots from a results file.

    python -m recipes benchmark report runs/benchmark/small/results.jsonl --out docs/benchmark_small

writes ``report.md`` with time-to-target per workload and submission (median and spread over seeds),
performance-profile scores, geometric-mean speedups against the baseline, seed spread, the lr grid and
the optimizer x initializer grid where they ran, plus ``curves_<workload>.png`` (metric against training
seconds, median and min-max band over seeds), ``profile.png`` and ``lr_<workload>.png``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recipes.benchmark.scoring import (
    all_lrs,
    geomean_speedup,
    performance_ratios,
    profile,
    profile_score,
    submission_of,
    summarize,
)  # noqa: E402
from recipes.modules.errors import ConfigError  # noqa: E402

__all__ = ["write_report"]


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


def _curves_plot(workload: str, runs_by_sub: dict[str, list[dict]], target: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for sub, runs in sorted(runs_by_sub.items()):
        curves = [
            (np.asarray(r["curve"]["time"]), np.asarray(r["curve"]["metric"], dtype=float))
            for r in runs
            if r["curve"]["time"]
        ]
        if not curves:
            continue
        grid = np.linspace(0, max(t[-1] for t, _ in curves), 200)
        # the value at each grid time is the last evaluation at or before it (a run that stopped holds its value)
        vals = np.stack([m[np.clip(np.searchsorted(t, grid, side="right") - 1, 0, None)] for t, m in curves])
        vals = np.where(np.isfinite(vals), vals, np.nan)
        line = ax.plot(grid, np.nanmedian(vals, axis=0), label=f"{sub} (lr {runs[0]['lr']:g})")[0]
        if len(curves) > 1:
            ax.fill_between(grid, np.nanmin(vals, axis=0), np.nanmax(vals, axis=0), color=line.get_color(), alpha=0.2)
    ax.axhline(target["value"], color="k", ls="--", lw=1, label=f"target {target['value']:g}")
    ax.set(
        xlabel="training seconds (evaluation excluded)",
        ylabel=target["metric"],
        title=f"{workload}: median and min-max over seeds",
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


def _lr_plot(workload: str, cells: dict[str, list], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for sub, cs in sorted(cells.items()):
        if len(cs) > 1:
            ax.plot([c.lr for c in cs], [c.median_best for c in cs], marker="o", label=sub)
    ax.set(xscale="log", xlabel="learning rate", ylabel="median best metric", title=f"{workload}: lr sensitivity")
    ax.legend(fontsize=7)
    _save(fig, path)


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
        raise ConfigError("the results file holds no runs", "run python -m recipes benchmark --config <suite> first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(records)
    times = {w: {s: c.median_time for s, c in row.items()} for w, row in summary.items()}
    ratios = performance_ratios(times, tau_max)
    scores = profile_score(ratios, tau_max)
    subs = sorted({s for row in summary.values() for s in row}, key=lambda s: -scores.get(s, 0))
    # with an initializer grid the baseline is its run under PyTorch's default initializer when there is one
    crossed = sorted(
        (s for s in subs if s.startswith(f"{baseline} + ")), key=lambda s: (s != f"{baseline} + default", s)
    )
    base = baseline if baseline in subs else next(iter(crossed), None)
    speed = geomean_speedup(times, base) if base else {}
    targets = {r["workload"]: r["target"] for r in records}
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
        "Time-to-target is training time in seconds (evaluation excluded) until the first evaluation at the target, "
        "median over seeds; a run that missed the target or diverged counts as infinite.",
        "",
        "## Scores",
        "",
        f"Performance-profile score = normalized area under rho(tau) for tau in [1, {tau_max:g}] "
        "(1 = fastest on every workload).",
        "",
    ]
    md.append(
        _table(
            ["submission", "profile score", f"geomean speedup vs {base}", "workloads compared"],
            [[s, scores.get(s, 0.0), speed.get(s, (math.nan, 0))[0], speed.get(s, (math.nan, 0))[1]] for s in subs],
        )
    )
    md += ["", "![performance profile](profile.png)", ""]
    _profile_plot(ratios, tau_max, out / "profile.png")

    for w, row in summary.items():
        t = targets[w]
        md += [
            f"## Workload `{w}`",
            "",
            f"Target: {t['metric']} {'>=' if t['mode'] == 'max' else '<='} {t['value']:g}.",
            "",
        ]
        rows = []
        for s in sorted(row, key=lambda s: (row[s].median_time, s)):
            c = row[s]
            finite = [x for x in c.times if math.isfinite(x)]
            rows.append(
                [
                    s,
                    c.lr,
                    c.median_time,
                    ratios[w][s],
                    c.median_steps,
                    f"{c.reached}/{len(c.statuses)}",
                    f"{min(finite):.3g}-{max(finite):.3g}" if finite else "-",
                    c.median_best,
                    statistics.pstdev([b for b in c.best if b is not None])
                    if len([b for b in c.best if b is not None]) > 1
                    else None,
                    ", ".join(sorted({x for x in c.statuses if x != "reached"})) or "-",
                ]
            )
        md.append(
            _table(
                [
                    "submission",
                    "lr",
                    "time-to-target (s)",
                    "ratio",
                    "steps",
                    "seeds reached",
                    "time range (s)",
                    "median best",
                    "best std",
                    "other outcomes",
                ],
                rows,
            )
        )
        runs_by_sub: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            if (
                r["workload"] == w
                and r["status"] != "error"
                and submission_of(r) in row
                and float(r["lr"]) == row[submission_of(r)].lr
            ):
                runs_by_sub[submission_of(r)].append(r)
        _curves_plot(w, runs_by_sub, t, out / f"curves_{_slug(w)}.png")
        md += ["", f"![{w} curves](curves_{_slug(w)}.png)", ""]
        grid = all_lrs(records).get(w, {})
        if any(len(cs) > 1 for cs in grid.values()):
            md += ["Learning-rate grid (median over seeds):", ""]
            md.append(
                _table(
                    ["submission", "lr", "time-to-target (s)", "seeds reached", "median best"],
                    [
                        [s, c.lr, c.median_time, f"{c.reached}/{len(c.statuses)}", c.median_best]
                        for s, cs in sorted(grid.items())
                        for c in cs
                    ],
                )
            )
            _lr_plot(w, grid, out / f"lr_{_slug(w)}.png")
            md += ["", f"![{w} lr sensitivity](lr_{_slug(w)}.png)", ""]
        inits = sorted({r.get("init") for r in records if r["workload"] == w})
        if len(inits) > 1:
            opts = sorted({r["optimizer"] for r in records if r["workload"] == w})
            md += ["Optimizer x initializer (median time-to-target in s; seeds reached):", ""]
            cell = {(s.split(" + ")[0], s.split(" + ")[1] if " + " in s else "task default"): c for s, c in row.items()}
            md.append(
                _table(
                    ["optimizer"] + inits,
                    [
                        [o]
                        + [
                            f"{_fmt(cell[(o, i)].median_time)} ({cell[(o, i)].reached}/{len(cell[(o, i)].statuses)})"
                            if (o, i) in cell
                            else "-"
                            for i in inits
                        ]
                        for o in opts
                    ],
                )
            )
            md.append("")
    if errors:
        md += [
            "## Runs that failed to run",
            "",
            "Retried on the next `python -m recipes benchmark` with the same suite.",
            "",
        ]
        md.append(
            _table(
                ["workload", "optimizer", "lr", "seed", "error"],
                [[r["workload"], r["optimizer"], r["lr"], r["seed"], (r.get("error") or "")[:120]] for r in errors],
            )
        )
    path = out / "report.md"
    fd, tmp = tempfile.mkstemp(suffix=".md", dir=out)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(md) + "\n")
    os.replace(tmp, path)
    return path
