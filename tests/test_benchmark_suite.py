"""The benchmark harness end to end on real (tiny) runs: the regression workload, trials and studies, resume,
divergence, the report with its plots, merging, target setting, time budgets and cadences, submissions that are
not plain optimizers, and the bad-input messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.__main__ import main
from recipes.benchmark import runner
from recipes.benchmark.results import load_results, merge_results
from recipes.data.regression.datamodule import SyntheticRegressionDataModule, least_squares
from tests.conftest import CONFIGS

REGRESSION = {
    "name": "regression",
    "config": str(CONFIGS / "regression.yaml"),
    "metric": "val/dist_to_opt",
    "mode": "min",
    "target": 0.1,
    "max_steps": 400,
    "max_runtime": 30.0,
    "eval_every_n_steps": 25,
    "overrides": {"data.condition": 10.0},
}
DIGITS = {
    "name": "digits",
    "config": str(CONFIGS / "image_classification_digits.yaml"),
    "metric": "val/acc",
    "mode": "max",
    "target": 0.9,
    "max_steps": 60,
    "max_runtime": 60.0,
    "eval_every_n_steps": 20,
}
FIXED = {}  # nothing to tune: every trial runs the submission's own settings


def _fixed(label: str, **optimizer) -> dict:
    return {"label": label, "optimizer": optimizer, "search_space": FIXED}


def _suite(tmp_path: Path, **extra) -> Path:
    suite = {
        "name": "tiny",
        "results": str(tmp_path / "results.jsonl"),
        "studies": 2,
        "trials": 1,
        "workloads": [REGRESSION],
        "submissions": [
            _fixed("adamw", name="adamw", lr=0.1, weight_decay=0.0),
            _fixed("sgd_nesterov", name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0),
        ],
        **extra,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))
    return path


def test_least_squares_matches_numpy():
    dm = SyntheticRegressionDataModule(num_train=300, dim=7, condition=30.0, seed=3)
    x, y = dm.train_set.tensors
    ref = np.linalg.lstsq(np.c_[x.double().numpy(), np.ones(len(x))], y.double().numpy(), rcond=None)[0]
    w, b = least_squares(x, y)
    assert np.allclose(w.numpy(), ref[:-1], atol=1e-9) and abs(float(b) - ref[-1]) < 1e-9


def test_regression_workload_reaches_the_known_optimum(tmp_path):
    root = tmp_path / "reg"
    assert (
        main(
            [
                "fit",
                "--config",
                str(CONFIGS / "regression.yaml"),
                "--trainer.default_root_dir",
                str(root),
                "--data.condition",
                "10",
                "--trainer.max_steps",
                "800",
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        == 0
    )
    model = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    dm = SyntheticRegressionDataModule(condition=10.0)
    w, b = dm.optimum
    theta = torch.cat([model["net.weight"].flatten(), model["net.bias"]]).double()
    dist = float((theta - torch.cat([w, b.reshape(1)])).norm() / torch.cat([w, b.reshape(1)]).norm())
    assert dist < 0.01  # AdamW with a cosine schedule lands on the least-squares solution


def test_suite_end_to_end_resume_and_report(tmp_path, monkeypatch):
    path = _suite(
        tmp_path,
        workloads=[REGRESSION, DIGITS],
        trials=2,
        submissions=[
            {
                "label": "adamw",
                "optimizer": {"name": "adamw", "weight_decay": 0.0},
                "search_space": {"learning_rate": {"feasible_points": [0.03, 0.1]}},
            },
            {
                "label": "sgd_nesterov",
                "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
                "search_space": [{"learning_rate": 50.0}, {"learning_rate": 60.0}],  # AlgoPerf's list form; diverges
            },
        ],
    )
    assert main(["benchmark", "--config", str(path)]) == 0
    recs = load_results(tmp_path / "results.jsonl")
    assert len(recs) == 2 * 2 * 2 * 2  # workloads x submissions x studies x trials
    by = {(r["workload"], r["optimizer"], r["study"], r["trial"]): r for r in recs}
    reg = next(r for r in recs if r["workload"] == "regression" and r["optimizer"] == "adamw" and r["lr"] == 0.1)
    assert reg["status"] == "reached" and reg["best"] <= 0.1 and reg["time_to_target"] > 0
    assert reg["curve"]["step"][0] == 25 and all(np.diff(reg["curve"]["time"]) > 0)
    assert reg["config"]["overrides"]["model.optimizer"]["lr"] == 0.1 and reg["hyperparameters"] == {
        "learning_rate": 0.1
    }
    assert reg["env"]["versions"]["torch"] == torch.__version__ and reg["budget"]["max_runtime"] == 30.0
    assert {by[("regression", "sgd_nesterov", s, t)]["status"] for s in (0, 1) for t in (0, 1)} == {"diverged"}
    assert {by[("regression", "sgd_nesterov", s, t)]["lr"] for s in (0, 1) for t in (0, 1)} == {50.0, 60.0}
    assert by[("digits", "adamw", 0, 0)]["status"] in ("reached", "missed")
    assert len({r["seed"] for r in recs}) == 4  # one seed per (study, trial), shared by the submissions

    report = (tmp_path / "report" / "report.md").read_text()
    assert "## External-tuning ruleset" in report and "### Workload `regression`" in report
    assert "### Workload `digits`" in report and "Every trial on regression" in report and "diverged" in report
    for png in ("profile.png", "curves_regression.png", "curves_digits.png", "lr_regression.png"):
        data = (tmp_path / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000

    # a second run of the same suite trains nothing; a run recorded as an error is trained again
    calls = []
    real = runner.train_run
    monkeypatch.setattr(runner, "train_run", lambda run, stop: calls.append(run) or real(run, stop))
    assert main(["benchmark", "--config", str(path)]) == 0
    assert calls == [] and len(load_results(tmp_path / "results.jsonl")) == 16
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    broken = json.loads(lines[0]) | {"status": "error", "error": "killed"}
    (tmp_path / "results.jsonl").write_text("\n".join([json.dumps(broken)] + lines[1:]) + "\n")
    assert main(["benchmark", "--config", str(path), "--only", "[regression]"]) == 0
    assert len(calls) == 1 and calls[0].key == broken["key"]
    recs = load_results(tmp_path / "results.jsonl")
    assert len(recs) == 16 and [r["status"] for r in recs if r["key"] == broken["key"]] != ["error"]
    # a list search space gives at most its points per study: asking for more is one line, exit 2
    assert main(["benchmark", "--config", str(path), "--trials", "3", "--dry_run", "true"]) == 2


def test_merge_keeps_each_run_once(tmp_path):
    rec = {"key": "k1", "status": "reached", "env": {"host": "a"}, "finished_at": "t1"}
    other = {"key": "k1", "status": "missed", "env": {"host": "b"}, "finished_at": "t2"}
    (tmp_path / "a.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(other) + "\n")
    assert merge_results([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "m.jsonl") == (2, 1)
    assert [r["env"]["host"] for r in load_results(tmp_path / "m.jsonl")] == ["a", "b"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"baseline": "nadam"}, "baseline 'nadam' is not one of the suite's submissions"),
        (
            {"workloads": [REGRESSION | {"config": "configs/nope.yaml"}]},
            "config configs/nope.yaml: no such file (relative to",
        ),
        ({"submissions": [_fixed("adamw", name="adamw", lr=0.1, momentom=0.9)]}, "momentom"),
        (
            {"submissions": [_fixed("adamw", name="adamw") | {"per_workload": {"regression": {"lr": 1.0}}}]},
            "hand tuning, which AlgoPerf's rules forbid",
        ),
        ({"submissions": [{"label": "adamw", "optimizer": {"name": "adamw"}}]}, "needs a search space"),
        ({"workloads": [REGRESSION | {"max_runtime": 0}]}, "max_runtime must be > 0"),
        ({"trainer": {"max_steps": 5}}, "sets trainer.max_steps, which the benchmark sets"),
        ({"workloads": [REGRESSION | {"overrides": {"seed_everything": 3}}]}, "sets seed_everything"),
        ({"ruleset": "self_tuning", "submissions": [{"label": "adamw"}]}, "trials is not a setting of it"),
        ({"workloads": [REGRESSION, REGRESSION]}, "repeats workload regression"),
    ],
)
def test_bad_suites_fail_with_one_message(tmp_path, capsys, change, message):
    assert main(["benchmark", "--config", str(_suite(tmp_path, **change))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recipes:") and message in err[0], err


def test_corrupt_results_line_is_named(tmp_path, capsys):
    path = _suite(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"key": "a", "status": "reached"}\n{"key": "b", "sta\n')
    assert main(["benchmark", "--config", str(path)]) == 2
    assert "results.jsonl:2 is not a JSON record" in capsys.readouterr().err
    assert main(["benchmark", "report", str(tmp_path / "missing.jsonl")]) == 2


def test_optimizer_by_initializer_grid(tmp_path):
    path = _suite(
        tmp_path,
        workloads=[DIGITS | {"max_steps": 20}],
        studies=1,
        initializers=[{"name": "default"}, {"name": "orthogonal", "gain": 0.5}],
        submissions=[_fixed("adamw", name="adamw", lr=0.01)],
    )
    assert main(["benchmark", "--config", str(path)]) == 0
    recs = load_results(tmp_path / "results.jsonl")
    assert sorted(r["init"] for r in recs) == ["default", "orthogonal(gain=0.5)"]
    assert {r["config"]["init"]["name"] for r in recs} == {"default", "orthogonal"}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Submission x initializer" in report and "| adamw + orthogonal(gain=0.5) |" in report


def test_ddp_suite_runs_each_run_in_its_own_process(tmp_path):
    # Lightning's ddp re-runs the launching command for the other ranks, so multi-device runs are isolated
    path = _suite(
        tmp_path,
        studies=1,
        trainer={"accelerator": "cpu", "devices": 2, "strategy": "ddp"},
        # evaluations on training time: rank zero decides for both ranks (a split decision would hang)
        workloads=[REGRESSION | {"max_steps": 300, "eval_every_seconds": 0.3, "target": 1e-9}],
        submissions=[_fixed("adamw", name="adamw", lr=0.3, weight_decay=0.0)],
    )
    assert main(["benchmark", "--config", str(path)]) == 0
    (rec,) = load_results(tmp_path / "results.jsonl")
    assert rec["status"] == "missed" and rec["config"]["trainer"]["devices"] == 2
    assert rec["accelerator"] == "CPUAccelerator" and 0 < rec["steps"] <= 300
    gaps = np.diff([0.0] + rec["curve"]["time"])  # training seconds between evaluations
    assert len(gaps) >= 2 and (gaps >= 0.3).all(), gaps


def test_time_budget_stops_a_run(tmp_path):
    path = _suite(
        tmp_path,
        studies=1,
        workloads=[REGRESSION | {"max_steps": 100000, "max_runtime": 1.0, "target": 1e-9}],
        baseline="sgd",
        submissions=[_fixed("sgd", name="sgd", lr=0.01, weight_decay=0.0)],
    )
    assert main(["benchmark", "--config", str(path)]) == 0
    (rec,) = load_results(tmp_path / "results.jsonl")
    assert rec["status"] == "missed" and 1.0 <= rec["train_time"] < 5.0 and 0 < rec["steps"] < 100000


def test_submissions_beyond_a_torch_optimizer(tmp_path):
    from tests.benchmark_helpers import PlainSGD

    PlainSGD.built = PlainSGD.steps = 0
    path = _suite(
        tmp_path,
        studies=1,
        baseline="plain_sgd",
        submissions=[
            {
                "label": "plain_sgd",
                "submission": "tests.benchmark_helpers.PlainSGD",
                "search_space": {"learning_rate": {"feasible_points": [0.05]}},
            },
            {
                "label": "adamw_ema",
                "submission": "recipes.benchmark.ema_submission.AdamWEMA",
                "arguments": {"optimizer": {"weight_decay": 0.0}},
                "search_space": {"learning_rate": {"feasible_points": [0.1]}, "ema_decay": {"feasible_points": [0.9]}},
            },
        ],
    )
    assert main(["benchmark", "--config", str(path)]) == 0
    recs = {r["optimizer"]: r for r in load_results(tmp_path / "results.jsonl")}
    plain, ema = recs["plain_sgd"], recs["adamw_ema"]
    assert plain["config"]["overrides"] == {"data.batch_size": 32} and plain["lr"] == 0.05
    assert PlainSGD.built == 1 and PlainSGD.steps >= plain["steps"] > 0  # its optimizer trained, its hooks ran
    assert (
        ema["config"]["overrides"]["model.optimizer"]["name"] == "adamw" and ema["hyperparameters"]["ema_decay"] == 0.9
    )
    assert plain["status"] == ema["status"] == "reached"


def test_targets_are_the_median_study_best(tmp_path):
    path = _suite(
        tmp_path,
        trials=2,
        workloads=[REGRESSION | {"max_steps": 100, "config": "regression.yaml"}],  # relative to the suite
        submissions=[
            {
                "label": "adamw",
                "optimizer": {"name": "adamw", "weight_decay": 0.0},
                "search_space": {"learning_rate": {"feasible_points": [0.01, 0.03, 0.1]}},
            }
        ],
    )
    (tmp_path / "regression.yaml").write_text((CONFIGS / "regression.yaml").read_text())
    out = tmp_path / "out" / "with_targets.yaml"
    assert main(["benchmark", "targets", "--config", str(path), "--out", str(out)]) == 0
    recs = load_results(tmp_path / "results.targets.jsonl")
    assert len(recs) == 4 and all(r["steps"] == 100 for r in recs)  # full budgets: no stop at the old target
    per_study = [min(r["best"] for r in recs if r["study"] == s) for s in (0, 1)]
    import yaml

    written = yaml.safe_load(out.read_text())
    assert written["workloads"][0]["target"] == pytest.approx(float(np.median(per_study)), rel=1e-5)
    assert Path(written["workloads"][0]["config"]).is_absolute() and out.read_text().startswith("# suite.yaml")
    assert written["results"] == str(tmp_path / "results.with_targets.jsonl")  # never mixed with the old trials
    assert main(["benchmark", "--config", str(out), "--dry_run", "true"]) == 0  # the copy is a working suite


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "worker process"])
def test_user_errors_inside_a_trial_stop_the_benchmark(tmp_path, capsys, isolate):
    # a metric the task never logs, a task setting the config refuses: one line and exit 2, not error records
    bad = [REGRESSION | {"metric": "val/nope", "max_steps": 30}]
    if not isolate:
        bad.append(REGRESSION | {"name": "typo", "overrides": {"data.conditon": 3.0}})
    for workload in bad:
        path = _suite(tmp_path, studies=1, isolate=isolate, workloads=[workload], submissions=[_fixed("adamw")])
        assert main(["benchmark", "--config", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("recipes:") and ("val/nope" in err[0] or "conditon" in err[0]), err
        assert not (tmp_path / "results.jsonl").exists()
