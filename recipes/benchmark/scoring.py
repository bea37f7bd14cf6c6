"""AlgoPerf's scoring (Dahl et al., 2023; the rules in its DOCUMENTATION.md): trials, studies, profiles, speedups.

* A *submission* is a label (with its initializer when a suite crosses them), scored per ruleset.
* A trial's time is its training time to the first evaluation at the target; a trial that missed, diverged
  or reached it only after ``max_runtime`` is infinite.
* A study's time is its fastest trial's (the trial reaching the target in the least training time; ties go
  to the lower trial index). A workload's time is the median over studies, an infinite study included.
* Performance ratio r = t / (best t on that workload); ratios above ``tau_max`` become infinite.
  rho(tau) is the fraction of workloads with r <= tau; the score is rho's normalized area over
  [1, tau_max], computed exactly: mean over workloads of (tau_max - r) / (tau_max - 1) for r <= tau_max.
* Speedup against the baseline: the geometric mean over workloads of t_baseline / t, a miss counting as
  the workload's ``max_runtime`` (as AlgoPerf's ``compute_speedups.py`` replaces infinities by the budget).

Where AlgoPerf's code departs from its rules (see docs/benchmark.md) this follows the rules: the best trial
is picked by time, not by earliest evaluation index, and the area is exact, not a 100-point trapezoid.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from recipes.modules.errors import ConfigError

__all__ = [
    "Trial",
    "Score",
    "submission_of",
    "summarize",
    "by_ruleset",
    "performance_ratios",
    "profile",
    "profile_score",
    "geomean_speedup",
]

INF = math.inf


def submission_of(rec: dict[str, Any]) -> str:
    """The name a run is scored under: its label, plus the initializer in a crossed grid."""
    init = rec.get("init") or "task default"
    return rec["optimizer"] if init == "task default" else f"{rec['optimizer']} + {init}"


@dataclass
class Trial:
    """One trial's outcome."""

    study: int
    trial: int
    time: float
    steps: float
    best: float | None
    status: str
    lr: float | None
    hyperparameters: dict[str, Any]
    record: dict[str, Any] = field(repr=False)


@dataclass
class Score:
    """One (workload, submission): its trials by study, and AlgoPerf's per-workload time."""

    workload: str
    submission: str
    mode: str
    max_runtime: float | None
    trials: list[Trial] = field(default_factory=list)

    def studies(self) -> dict[int, list[Trial]]:
        out: dict[int, list[Trial]] = defaultdict(list)
        for t in sorted(self.trials, key=lambda t: (t.study, t.trial)):
            out[t.study].append(t)
        return dict(out)

    def fastest(self) -> dict[int, Trial | None]:
        """study -> its fastest trial at the target (None: no trial reached it)."""
        out = {}
        for s, ts in self.studies().items():
            hit = [t for t in ts if math.isfinite(t.time)]
            out[s] = min(hit, key=lambda t: (t.time, t.trial)) if hit else None
        return out

    def study_times(self) -> dict[int, float]:
        return {s: (t.time if t is not None else INF) for s, t in self.fastest().items()}

    @property
    def time(self) -> float:
        times = list(self.study_times().values())
        return statistics.median(times) if times else INF

    @property
    def studies_reached(self) -> int:
        return sum(math.isfinite(t) for t in self.study_times().values())

    def best_metric(self) -> float:
        """Median over studies of the study's best metric (its best trial by metric)."""
        sign = 1 if self.mode == "max" else -1
        per = []
        for ts in self.studies().values():
            vals = [t.best for t in ts if t.best is not None and math.isfinite(t.best)]
            if vals:
                per.append(max(vals, key=lambda v: sign * v))
        return statistics.median(per) if per else (-INF if self.mode == "max" else INF)


def _trial(rec: dict[str, Any]) -> Trial:
    if "study" not in rec or "trial" not in rec:
        raise ConfigError(
            f"run {rec.get('key')} has no study/trial (written by an older recipes, before AlgoPerf's rulesets)",
            "rerun the suite with this version; its records are scored by study and trial",
        )
    budget = (rec.get("budget") or {}).get("max_runtime")
    t = rec.get("time_to_target")
    ok = rec["status"] == "reached" and t is not None and (not budget or float(t) <= float(budget))
    return Trial(
        study=int(rec["study"]),
        trial=int(rec["trial"]),
        time=float(t) if ok else INF,
        steps=float(rec["steps_to_target"]) if ok else INF,
        best=rec.get("best"),
        status=rec["status"] if ok or rec["status"] != "reached" else "missed",
        lr=rec.get("lr"),
        hyperparameters=rec.get("hyperparameters") or {},
        record=rec,
    )


def by_ruleset(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The scored records (rank zero, not ``error``) grouped by ruleset: each is scored on its own."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["status"] != "error" and r.get("rank_zero", True):
            out[r.get("ruleset", "external_tuning")].append(r)
    return dict(sorted(out.items()))


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Score]]:
    """workload -> submission -> Score, for the records of one ruleset (``error`` runs are left out: they
    are retried by the next benchmark run)."""
    out: dict[str, dict[str, Score]] = defaultdict(dict)
    seen: dict[tuple, str] = {}
    settings: dict[str, tuple] = {}
    for r in records:
        if r["status"] == "error" or not r.get("rank_zero", True):
            continue
        w, s = r["workload"], submission_of(r)
        ident = (r.get("ruleset"), w, s, r.get("study"), r.get("trial"))
        if ident in seen:
            raise ConfigError(
                f"study {r.get('study')} trial {r.get('trial')} of {s} on {w} is recorded twice (runs {seen[ident]} "
                f"and {r['key']}: merged from two machines, or from two versions of the suite)",
                "keep one record per trial (recipes benchmark report scores the file as it is)",
            )
        seen[ident] = r["key"]
        setting = (json.dumps(r["target"], sort_keys=True), json.dumps(r.get("budget"), sort_keys=True))
        if settings.setdefault(w, setting) != setting:
            raise ConfigError(
                f"workload {w} has trials with different targets or budgets ({settings[w]} and {setting})",
                "score one version of the suite: report the records of one suite run",
            )
        budget = (r.get("budget") or {}).get("max_runtime")
        score = out[w].setdefault(s, Score(w, s, r["target"]["mode"], float(budget) if budget else None))
        score.trials.append(_trial(r))
    return {w: dict(sorted(row.items())) for w, row in sorted(out.items())}


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


def geomean_speedup(
    times: dict[str, dict[str, float]], baseline: str, max_runtime: dict[str, float | None]
) -> dict[str, tuple[float, int]]:
    """submission -> (geometric mean over workloads of t_baseline / t, number of workloads), a miss counting
    as the workload's ``max_runtime``; a workload with a miss and no budget is left out (and not counted)."""
    subs = sorted({s for row in times.values() for s in row})
    out = {}
    for s in subs:
        logs = []
        for w, row in times.items():
            if baseline not in row or s not in row:
                continue
            cap = max_runtime.get(w)
            base, mine = (min(row[k], cap) if cap else row[k] for k in (baseline, s))
            if math.isfinite(base) and math.isfinite(mine):
                logs.append(math.log(base / mine))
        out[s] = (math.exp(sum(logs) / len(logs)) if logs else math.nan, len(logs))
    return out
