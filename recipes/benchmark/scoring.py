"""AlgoPerf-style scoring (Dahl et al., 2023): time-to-target per workload, performance profiles, speedups.

* A *submission* is an optimizer label (with its initializer when a grid crosses them). Where an lr grid
  ran, each workload scores the submission's best lr (lowest median time-to-target; ties go to the better
  median best metric), as AlgoPerf's external tuning keeps the best trial.
* Its time on a workload is the median over seeds of the time-to-target, a run that missed the target or
  diverged counting as infinite (so 2 of 3 seeds must reach it for a finite median).
* Performance ratio r = t / (best t on that workload); ratios above ``tau_max`` become infinite.
  rho(tau) is the fraction of workloads with r <= tau; the score is rho's normalized area over
  [1, tau_max]: mean over workloads of (tau_max - r) / (tau_max - 1) for r <= tau_max, else 0.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["Cell", "submission_of", "summarize", "performance_ratios", "profile", "profile_score", "geomean_speedup"]

INF = math.inf


def submission_of(rec: dict[str, Any]) -> str:
    """The name a run is scored under: its optimizer label, plus the initializer in a crossed grid."""
    init = rec.get("init") or "task default"
    return rec["optimizer"] if init == "task default" else f"{rec['optimizer']} + {init}"


@dataclass
class Cell:
    """One (workload, submission, lr): its seeds' times and metrics."""

    workload: str
    submission: str
    lr: float
    mode: str
    times: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    @property
    def median_time(self) -> float:
        return statistics.median(self.times) if self.times else INF

    @property
    def median_steps(self) -> float:
        return statistics.median(self.steps) if self.steps else INF

    @property
    def median_best(self) -> float:
        vals = [b for b in self.best if b is not None and math.isfinite(b)]
        if not vals:
            return -INF if self.mode == "max" else INF
        return statistics.median(vals)

    @property
    def reached(self) -> int:
        return self.statuses.count("reached")


def _cells(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, float], Cell]:
    cells: dict[tuple[str, str, float], Cell] = {}
    for r in records:
        if r["status"] == "error" or not r.get("rank_zero", True):
            continue
        key = (r["workload"], submission_of(r), float(r["lr"]))
        cell = cells.setdefault(key, Cell(*key, mode=r["target"]["mode"]))
        ok = r["status"] == "reached"
        cell.times.append(float(r["time_to_target"]) if ok else INF)
        cell.steps.append(float(r["steps_to_target"]) if ok else INF)
        cell.best.append(r.get("best"))
        cell.statuses.append(r["status"])
    return cells


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Cell]]:
    """workload -> submission -> its best-lr Cell (see the module docstring)."""
    by: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in _cells(records).values():
        by[(cell.workload, cell.submission)].append(cell)
    out: dict[str, dict[str, Cell]] = defaultdict(dict)
    for (w, s), cells in sorted(by.items()):
        sign = -1 if cells[0].mode == "max" else 1
        out[w][s] = min(cells, key=lambda c: (c.median_time, sign * c.median_best, c.lr))
    return dict(out)


def all_lrs(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[Cell]]]:
    """workload -> submission -> every lr's Cell, for lr-sensitivity plots."""
    out: dict[str, dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for cell in _cells(records).values():
        out[cell.workload][cell.submission].append(cell)
    return {w: {s: sorted(c, key=lambda c: c.lr) for s, c in d.items()} for w, d in out.items()}


def performance_ratios(times: dict[str, dict[str, float]], tau_max: float = 4.0) -> dict[str, dict[str, float]]:
    """workload -> submission -> t / min t, infinite above ``tau_max`` or where no submission reached."""
    ratios: dict[str, dict[str, float]] = {}
    for w, row in times.items():
        best = min(row.values())
        ratios[w] = {}
        for s, t in row.items():
            r = t / best if math.isfinite(best) and math.isfinite(t) else INF
            ratios[w][s] = r if r <= tau_max else INF
    return ratios


def _by_submission(ratios: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    subs = sorted({s for row in ratios.values() for s in row})
    return {s: [ratios[w].get(s, INF) for w in ratios] for s in subs}


def profile(ratios: dict[str, dict[str, float]], taus: Iterable[float]) -> dict[str, list[float]]:
    """rho_s(tau) for every submission: the fraction of workloads solved within tau times the fastest."""
    taus = list(taus)
    return {s: [sum(r <= t for r in rs) / len(rs) for t in taus] for s, rs in _by_submission(ratios).items()}


def profile_score(ratios: dict[str, dict[str, float]], tau_max: float = 4.0) -> dict[str, float]:
    """Normalized area under rho over [1, tau_max], computed exactly (rho is a step function)."""
    return {
        s: sum((tau_max - r) / (tau_max - 1) for r in rs if r <= tau_max) / len(rs)
        for s, rs in _by_submission(ratios).items()
    }


def geomean_speedup(times: dict[str, dict[str, float]], baseline: str) -> dict[str, tuple[float, int]]:
    """submission -> (geometric mean of t_baseline / t over workloads both reached, number of such workloads)."""
    subs = sorted({s for row in times.values() for s in row})
    out = {}
    for s in subs:
        logs = [
            math.log(row[baseline] / row[s])
            for row in times.values()
            if baseline in row and s in row and math.isfinite(row[baseline]) and math.isfinite(row[s])
        ]
        out[s] = (math.exp(sum(logs) / len(logs)) if logs else math.nan, len(logs))
    return out
