"""AlgoPerf-style scoring against hand-computed values: ratios, profiles, their areas, failures and ties."""

from __future__ import annotations

import math

import pytest

from recipes.benchmark.scoring import geomean_speedup, performance_ratios, profile, profile_score, summarize

INF = math.inf
TIMES = {  # workload -> submission -> median time-to-target (inf: missed or diverged)
    "w1": {"A": 10.0, "B": 20.0, "C": INF},
    "w2": {"A": 30.0, "B": 15.0, "C": 60.0},
    "w3": {"A": INF, "B": INF, "C": INF},  # nobody reached: every ratio is infinite
    "w4": {"A": 8.0, "B": 8.0, "C": 40.0},  # a tie, and a ratio (5) beyond tau_max
}


def test_ratios_by_hand():
    r = performance_ratios(TIMES, tau_max=4.0)
    assert r["w1"] == {"A": 1.0, "B": 2.0, "C": INF}
    assert r["w2"] == {"A": 2.0, "B": 1.0, "C": 4.0}
    assert r["w3"] == {"A": INF, "B": INF, "C": INF}
    assert r["w4"] == {"A": 1.0, "B": 1.0, "C": INF}


def test_profile_and_area_by_hand():
    r = performance_ratios(TIMES, tau_max=4.0)
    rho = profile(r, [1.0, 1.99, 2.0, 3.99, 4.0])
    assert rho["A"] == pytest.approx([2 / 4, 2 / 4, 3 / 4, 3 / 4, 3 / 4])
    assert rho["B"] == pytest.approx([2 / 4, 2 / 4, 3 / 4, 3 / 4, 3 / 4])
    assert rho["C"] == pytest.approx([0, 0, 0, 0, 1 / 4])
    # area over [1, 4] / 3: A solves w1, w4 at tau 1 (3 each) and w2 at tau 2 (2): (3 + 2 + 0 + 3) / 3 / 4
    score = profile_score(r, tau_max=4.0)
    assert score["A"] == pytest.approx(8 / 12)
    assert score["B"] == pytest.approx(8 / 12)
    assert score["C"] == pytest.approx(0.0)  # solved only at exactly tau_max: zero area


def test_area_equals_numerical_integral():
    r = performance_ratios({"a": {"X": 1.0, "Y": 1.7}, "b": {"X": 3.1, "Y": 1.0}, "c": {"X": 2.2, "Y": INF}})
    taus = [1 + 3 * i / 300000 for i in range(300001)]
    rho = profile(r, taus)
    for s, score in profile_score(r).items():
        numeric = sum(rho[s][i] * (taus[i + 1] - taus[i]) for i in range(len(taus) - 1)) / 3
        assert score == pytest.approx(numeric, abs=1e-4)


def test_geomean_speedup_by_hand():
    speed = geomean_speedup(TIMES, "A")
    assert speed["A"] == (1.0, 3)
    value, n = speed["B"]  # w1: 10/20, w2: 30/15, w4: 8/8 -> geomean of 0.5, 2, 1 = 1
    assert n == 3 and value == pytest.approx(1.0)
    value, n = speed["C"]  # only w2 (30/60) and w4 (8/40) have both finite
    assert n == 2 and value == pytest.approx(math.sqrt(0.5 * 0.2))


def _rec(workload, opt, lr, seed, status, t=None, best=None, mode="min"):
    return {
        "key": f"{workload}{opt}{lr}{seed}",
        "workload": workload,
        "optimizer": opt,
        "init": "task default",
        "lr": lr,
        "seed": seed,
        "status": status,
        "time_to_target": t,
        "steps_to_target": None if t is None else int(t * 10),
        "best": best,
        "target": {"metric": "m", "mode": mode, "value": 0.0},
    }


def test_medians_count_failures_as_infinite_and_best_lr_wins():
    recs = [
        _rec("w", "A", 0.1, 0, "reached", 10.0, 0.1),
        _rec("w", "A", 0.1, 1, "reached", 12.0, 0.1),
        _rec("w", "A", 0.1, 2, "missed", None, 0.5),
        _rec("w", "A", 0.3, 0, "reached", 5.0, 0.1),
        _rec("w", "A", 0.3, 1, "diverged", None, None),
        _rec("w", "A", 0.3, 2, "missed", None, 0.9),
        _rec("w", "B", 1.0, 0, "error", None, None),  # an error is not a result: ignored until re-run
    ]
    cells = summarize(recs)["w"]
    assert set(cells) == {"A"}
    a = cells["A"]
    assert a.lr == 0.1 and a.median_time == 12.0 and a.reached == 2  # lr 0.3 has median inf (1 of 3 reached)
    assert a.median_steps == 120


def test_tie_on_time_broken_by_best_metric():
    recs = [_rec("w", "A", 0.1, 0, "missed", None, 0.5), _rec("w", "A", 0.3, 0, "missed", None, 0.2)]
    assert summarize(recs)["w"]["A"].lr == 0.3  # both inf: the lower (better, mode min) best metric wins
    recs = [_rec("w", "A", 0.1, 0, "missed", None, 0.5, "max"), _rec("w", "A", 0.3, 0, "missed", None, 0.2, "max")]
    assert summarize(recs)["w"]["A"].lr == 0.1
