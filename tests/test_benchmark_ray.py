"""The Ray executor against the sequential one, on a private local Ray instance (127.0.0.1, 2 CPUs) that this
module starts once and shares: the same records, resume, a worker that dies, a user error, and the one-line
errors for a missing cluster or a missing ray. Every run is the tiny regression workload on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recipes.benchmark.executors import RayExecutor, run_sequential, trial_resources
from recipes.benchmark.results import append_result, finished_keys, load_results
from recipes.benchmark.suite import Run, SubmissionSpec, Suite, Workload
from recipes.modules.errors import ConfigError

try:
    import ray
except ImportError:  # the ray extra (pip install 'recipes[ray]'); the pure tests run without it
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="needs the ray extra (pip install 'recipes[ray]')")

ROOT = Path(__file__).resolve().parents[1]
REGRESSION = {
    "name": "regression",
    "config": str(ROOT / "configs" / "regression.yaml"),
    "metric": "val/dist_to_opt",
    "mode": "min",
    "target": 0.1,
    "max_steps": 200,
    "max_runtime": 60.0,
    "eval_every_n_steps": 25,
    "overrides": {"data.condition": 10.0},
}
ADAMW = {"label": "adamw", "optimizer": {"name": "adamw", "lr": 0.1, "weight_decay": 0.0}, "search_space": {}}
SGD = {
    "label": "sgd_nesterov",
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
    "search_space": {},
}
DYING = {  # its constructor calls os._exit: the training process dies with no exception
    "label": "dying",
    "optimizer": {"name": "tests.benchmark_helpers.DyingSGD", "lr": 0.1, "weight_decay": 0.0},
    "search_space": {},
}


def _runs(tmp_path: Path, submissions: tuple[dict, ...] = (ADAMW, SGD), trials: int = 2, **workload) -> list[Run]:
    """The suite's runs: the one place that knows the suite format. Each submission has nothing to tune
    (empty search space), so its ``trials`` differ only in their seeds: 2 optimizers x 2 seeds by default."""
    suite = Suite(
        name="ray",
        workloads=[Workload(**(REGRESSION | workload))],
        submissions=[SubmissionSpec(**s) for s in submissions],
        studies=1,
        trials=trials,
        baseline=submissions[0]["label"],
        trainer={"accelerator": "cpu", "devices": 1},
        results=str(tmp_path / "results.jsonl"),
    )
    assert not suite.isolated
    return suite.runs()


# Differ between two trainings of the same run: clocks, where and when it ran.
TIMES = ("wall_time", "train_time", "eval_time", "time_to_target", "finished_at", "env")


def _comparable(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k not in TIMES}
    out["curve"] = {k: v for k, v in rec["curve"].items() if k != "time"}
    return out


@pytest.mark.parametrize(
    "trainer, resources",
    [
        ({}, {"num_cpus": 1}),
        ({"accelerator": "cpu"}, {"num_cpus": 1}),
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, {"num_cpus": 2}),
        ({"accelerator": "cpu", "devices": "3"}, {"num_cpus": 3}),
        ({"accelerator": "gpu", "devices": 1}, {"num_cpus": 1, "num_gpus": 1}),
        ({"accelerator": "cuda", "devices": 4}, {"num_cpus": 1, "num_gpus": 4}),
        ({"accelerator": "gpu", "devices": [0, 2]}, {"num_cpus": 1, "num_gpus": 2}),
        ({"accelerator": "gpu", "devices": "0,1,3"}, {"num_cpus": 1, "num_gpus": 3}),
        ({"accelerator": "gpu", "devices": -1}, {"num_cpus": 1, "num_gpus": 1}),
        ({"accelerator": "gpu", "devices": "auto"}, {"num_cpus": 1, "num_gpus": 1}),
        ({"accelerator": "auto", "devices": 2}, {"num_cpus": 1}),
    ],
)
def test_trial_resources(trainer, resources):
    assert trial_resources(trainer) == resources


def test_trial_resources_refuses_several_nodes():
    with pytest.raises(ConfigError, match="num_nodes 2 cannot run as one Ray task"):
        trial_resources({"accelerator": "gpu", "devices": 8, "num_nodes": 2})


def test_missing_ray_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"not installed\. Fix: pip install 'recipes\[ray\]'"):
        RayExecutor("local")


@needs_ray
def test_auto_without_a_cluster_is_one_line():
    # Before the module's local instance starts (tests run in file order): "auto" would find that one.
    code = textwrap.dedent(
        """
        from recipes.benchmark.executors import RayExecutor
        from recipes.modules.errors import ConfigError
        try:
            RayExecutor("auto").close()
        except ConfigError as err:
            print(err)
        else:
            print("CONNECTED")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    out = proc.stdout.strip()
    if out == "CONNECTED":
        pytest.skip("a Ray cluster is running on this machine")
    assert proc.returncode == 0, proc.stderr
    assert out == (
        "recipes: no running Ray cluster found (address auto). Fix: start one with `ray start --head` "
        "(here or on the head node), or use --ray_address local"
    )


@pytest.fixture(scope="module")
def local_ray():
    """One private Ray instance for the module, started as ``--ray_address local`` starts it; the driver's
    working folder is on the workers' path, and PYTHONPATH names it for the processes they start."""
    ex = RayExecutor("local", num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ex
    ex.close()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def sequential(local_ray, tmp_path_factory):
    """The default runs and their records from the sequential executor (in this process)."""
    runs = _runs(tmp_path_factory.mktemp("seq"))
    return runs, [rec for _, rec in run_sequential(runs, stop_at_target=False, isolated=False)]


@needs_ray
def test_local_instance_listens_on_loopback_only(local_ray):
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    (node,) = ray.nodes()
    assert node["NodeManagerAddress"] == "127.0.0.1" and node["Resources"]["CPU"] == 2
    with RayExecutor("local") as reused:  # Ray already initialized: used as it is, left running
        assert reused is not local_ray
    assert ray.is_initialized()


@needs_ray
def test_ray_records_match_sequential(local_ray, sequential):
    runs, seq = sequential
    got = dict((run.key, rec) for run, rec in RayExecutor().map(runs, stop_at_target=False, isolated=False))
    assert sorted(got) == sorted(r.key for r in runs) and len({r.key for r in runs}) == 4
    for want in seq:
        rec = got[want["key"]]
        assert want["status"] == "reached" and len(want["curve"]["step"]) == 8  # the whole budget was trained
        assert _comparable(rec) == _comparable(want)
        assert rec["env"]["host"] and rec["env"]["torch_threads"] == 1  # stamped in the Ray worker (1 CPU)
        assert rec["finished_at"] and rec["wall_time"] > 0


@needs_ray
def test_resume_trains_only_the_missing_runs(local_ray, sequential, tmp_path):
    runs, seq = sequential
    path = tmp_path / "results.jsonl"
    for rec in seq[:2]:
        append_result(path, rec)
    todo = [r for r in runs if r.key not in finished_keys(load_results(path))]
    trained = []
    for run, rec in RayExecutor().map(todo, stop_at_target=False, isolated=False):
        trained.append(run.key)
        append_result(path, rec)
    assert sorted(trained) == sorted(r.key for r in runs[2:])
    keys = [r["key"] for r in load_results(path)]
    assert sorted(keys) == sorted(r.key for r in runs) and len(set(keys)) == len(keys)


@needs_ray
def test_an_isolated_run_trains_in_its_own_worker_process(local_ray, sequential, tmp_path):
    runs, seq = sequential
    ((run, rec),) = RayExecutor().map(runs[:1], stop_at_target=False, isolated=True)
    assert rec["key"] == seq[0]["key"] and _comparable(rec) == _comparable(seq[0])
    assert rec["env"]["host"]


@needs_ray
def test_a_dying_worker_is_recorded_and_the_others_finish(local_ray, tmp_path):
    runs = _runs(tmp_path, (ADAMW, DYING, SGD), trials=1)
    recs = {run.label: rec for run, rec in RayExecutor().map(runs, stop_at_target=True, isolated=False)}
    assert sorted(recs) == ["adamw", "dying", "sgd_nesterov"]
    dead = recs["dying"]
    assert dead["status"] == "error" and dead["error"].startswith("ray worker died: "), dead["error"]
    assert dead["key"] == runs[1].key and dead["steps"] == 0 and dead["curve"]["step"] == []
    assert dead["best"] is None and dead["rank_zero"] is True and dead["env"] == {"host": None}
    assert finished_keys([dead]) == set()  # the next benchmark run trains it again
    assert {recs[k]["status"] for k in ("adamw", "sgd_nesterov")} == {"reached"}


@needs_ray
def test_a_user_error_in_a_task_stops_the_map_as_itself(local_ray, tmp_path):
    runs = _runs(tmp_path, (ADAMW,), trials=1, metric="val/nope")
    message = "recipes: the workload's metric 'val/nope' was not logged. Fix: logged metrics: "
    with pytest.raises(ConfigError) as seq:
        list(run_sequential(runs, stop_at_target=True, isolated=False))
    with pytest.raises(ConfigError) as remote:
        list(RayExecutor().map(runs, stop_at_target=True, isolated=False))
    assert type(remote.value) is ConfigError and str(remote.value) == str(seq.value)
    assert str(remote.value).startswith(message) and "\n" not in str(remote.value)


def test_executors_import_neither_ray_nor_lightning():
    code = "import sys, recipes.benchmark.executors; print(sorted({'ray', 'lightning'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.strip() == "[]", proc.stderr


@needs_ray
def test_the_benchmark_command_with_the_ray_executor(local_ray, tmp_path, capsys):
    """`recipes benchmark --executor ray` end to end: the driver writes every record, a rerun trains nothing."""
    import json

    from recipes.__main__ import main

    suite = {
        "name": "ray_cli",
        "results": str(tmp_path / "results.jsonl"),
        "studies": 2,
        "trials": 1,
        "workloads": [REGRESSION | {"max_steps": 100}],
        "submissions": [ADAMW, SGD],
        "trainer": {"accelerator": "cpu", "devices": 1},
    }
    (tmp_path / "suite.yaml").write_text(json.dumps(suite))
    argv = ["benchmark", "--config", str(tmp_path / "suite.yaml"), "--executor", "ray", "--ray_address", "local"]
    assert main(argv) == 0
    recs = load_results(tmp_path / "results.jsonl")
    assert len(recs) == 4 and {r["env"]["torch_threads"] for r in recs} == {1}  # trained in Ray workers
    assert (tmp_path / "report" / "report.md").is_file()
    capsys.readouterr()
    assert main(argv) == 0 and "trained 0 runs" in capsys.readouterr().out
    assert ray.is_initialized()  # the module's instance was reused, not shut down
