"""Where the benchmark's runs train: one after another on this machine, or as Ray tasks on a cluster.

Both executors take the runs still to train and yield ``(run, record)`` as each finishes; the driver appends
every record to the results file as it arrives, so a stopped benchmark resumes from whatever was recorded.
Every record carries ``env`` (``results.environment``), computed in the process that trained the run (for an
isolated run: the process that started its worker, on the same machine), so a record says which node ran it.

* ``run_sequential``: in this process (``runner.train_run``), or each run in a fresh worker process
  (``train_isolated``) when the suite is isolated (several devices: Lightning's ddp launcher re-runs the
  launching command, so one process holds one multi-device fit).
* ``RayExecutor``: one Ray task per run, sized by ``trial_resources`` from the suite's trainer settings, on a
  running cluster (``ray start --head`` here or on another machine; address ``auto``), through Ray Client
  (``ray://host:10001``), or on a private instance this process starts (``local``: on 127.0.0.1 only, no
  dashboard). Tasks are not retried by Ray: a run whose worker dies (killed, out of memory, node lost) is
  recorded with status ``error``, which the next benchmark run trains again, as it does a failed isolated
  worker. A user error (``RecipeError``, e.g. a workload's metric that is never logged) stops the benchmark
  with its one line, as it does without Ray.

Every Ray node needs the same ``recipes`` installed (the same version, ``pip install 'recipes[ray]'``), as
Ray's docs advise for a cluster's Python environment, and the suite's task config files at the same paths
(run from the same checkout path, or a shared filesystem): a task receives the run's settings, not its files.

Security: a Ray cluster runs whatever code its clients send it. Ray's own protection is optional token
authentication (``RAY_AUTH_MODE=token``; Ray 2.60 turns it on for a local instance, and ``ray start`` uses
it when a token exists: https://docs.ray.io/en/latest/ray-security/token-auth.html); without it Ray
authenticates nothing. Either way, start a cluster only where its ports are reachable from a trusted
private network, never from the internet.

Neither Ray nor Lightning is imported until used: this module imports without the ``ray`` extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from recipes.benchmark.results import environment
from recipes.benchmark.suite import Run, device_count
from recipes.modules.errors import ConfigError, RecipeError

__all__ = ["RayExecutor", "failed_record", "run_sequential", "train_isolated", "train_one", "trial_resources"]


def failed_record(run: Run, error: str) -> dict[str, Any]:
    """The record of a run whose training process died before writing one (status ``error``: retried)."""
    from recipes.benchmark.runner import base_record  # Lightning: imported only when a run is recorded

    return {
        **base_record(run),
        "status": "error",
        "error": error,
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


def train_isolated(run: Run, stop_at_target: bool) -> dict:
    """``run`` in a fresh ``python -m recipes.benchmark.worker`` process (see that module)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "run.json", Path(tmp) / "record.json"
        spec.write_text(json.dumps({"run": run.to_dict(), "stop_at_target": stop_at_target}))
        proc = subprocess.run(
            [sys.executable, "-m", "recipes.benchmark.worker", str(spec), str(out)], capture_output=True, text=True
        )
        if out.is_file():
            rec = json.loads(out.read_text())
            if "recipe_error" in rec:  # a user error in the worker stops the benchmark here too, as one line
                raise ConfigError(rec["recipe_error"])  # the line it carries, unwrapped
            return rec
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return failed_record(run, f"worker exited {proc.returncode}: {tail[0]}")


def train_one(run: Run, stop_at_target: bool, isolated: bool) -> dict[str, Any]:
    """Train ``run`` here (or in its own worker process when ``isolated``); the record, stamped with ``env``."""
    if isolated:
        rec = train_isolated(run, stop_at_target)
    else:
        from recipes.benchmark import runner  # Lightning: imported only when a run trains

        rec = runner.train_run(run, stop_at_target)
    rec["env"] = environment(str(run.trainer.get("accelerator", "auto")))
    rec["key"] = run.key  # the driver's key: a node that resolves a config differently cannot break resume
    return rec


def run_sequential(runs: Iterable[Run], stop_at_target: bool, isolated: bool) -> Iterator[tuple[Run, dict]]:
    """Train ``runs`` one after another on this machine, yielding each with its record as it finishes."""
    for run in runs:
        yield run, train_one(run, stop_at_target, isolated)


def trial_resources(trainer: dict[str, Any]) -> dict[str, int]:
    """The Ray resources one run asks for, from the suite's Trainer settings.

    ``accelerator`` gpu or cuda: ``num_gpus`` = the number of devices (an int, or the length of a list of
    indices) and one CPU; cpu: ``num_cpus`` = the number of devices (default 1); anything else (``auto``,
    ``mps``): one CPU and no GPU, so set ``accelerator: gpu`` to have Ray reserve GPUs. Devices ``-1`` or
    ``auto`` count as 1: Ray makes only the GPUs it reserved visible to a task, so Lightning then trains on
    that one; give a count to train on more. Device indices likewise refer to the reserved GPUs, renumbered
    from 0. A Ray task runs on one node: ``num_nodes`` above 1 is refused.
    """
    if int(trainer.get("num_nodes", 1)) > 1:
        raise ConfigError(
            f"trainer.num_nodes {trainer['num_nodes']} cannot run as one Ray task (a task runs on one node)",
            "set trainer.num_nodes 1 (each run on one node), or run the suite without Ray",
        )
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    n = device_count(trainer.get("devices", 1))
    if accelerator in ("gpu", "cuda"):
        return {"num_cpus": 1, "num_gpus": n}
    if accelerator == "cpu":
        return {"num_cpus": n}
    return {"num_cpus": 1}


def _ray_task(run: dict[str, Any], stop_at_target: bool, isolated: bool) -> dict[str, Any]:
    """One Ray task: the run rebuilt from its plain fields, trained on the node Ray chose."""
    return train_one(Run.from_dict(run), stop_at_target, isolated)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the Ray executor needs Ray, which is not installed", "pip install 'recipes[ray]' (on every node)"
        ) from None
    return ray


@contextmanager
def _loopback_node_ip() -> Iterator[None]:
    """On Linux Ray replaces a node IP of 127.0.0.1 with the machine's network address (so other nodes can
    join); its single-machine mode (macOS's and Windows' default) keeps it. Ray has no public switch for this."""
    from ray._private import ray_constants

    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)  # gone in some later Ray: the caller checks
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved is None:
            del ray_constants.ENABLE_RAY_CLUSTER
        else:
            ray_constants.ENABLE_RAY_CLUSTER = saved


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no message'}"[:300]


class RayExecutor:
    """Benchmark runs as Ray tasks, one per run (see the module docstring).

    Args:
        address: ``auto`` (a running cluster: ``ray start --head`` on this or another machine, or
            ``RAY_ADDRESS``), ``ray://host:port`` (Ray Client), or ``local`` (a private instance started and
            stopped here, listening on 127.0.0.1 only, without the dashboard).
        num_cpus: CPUs of a ``local`` instance (default: all of this machine's); refused with a cluster,
            whose nodes declare their own.
        runtime_env: Ray's job ``runtime_env`` (``env_vars``, ...), for a new connection or local instance.

    If Ray is already initialized in this process (a caller started it), that instance is used as it is
    and left running on ``close``.
    """

    def __init__(
        self, address: str = "auto", num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None
    ) -> None:
        ray = _import_ray()
        self._owns = False
        if ray.is_initialized():
            return
        if num_cpus is not None and address != "local":
            raise ConfigError(
                f"num_cpus sizes a local Ray instance, not the cluster at {address}",
                "drop num_cpus (the cluster's nodes declare their CPUs), or use address local",
            )
        if address == "local":
            with _loopback_node_ip():
                ray.init(
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    runtime_env=runtime_env,
                )
            self._owns = True
            gcs = ray.get_runtime_context().gcs_address
            if not gcs.startswith("127.0.0.1:"):  # never leave an instance listening on the network
                self.close()
                raise ConfigError(
                    f"this Ray started its local instance on {gcs}, not on 127.0.0.1 only",
                    "start a cluster on a trusted network (ray start --head) and use address auto",
                )
            return
        try:
            ray.init(address=address, runtime_env=runtime_env)
        except ConnectionError as exc:
            if address == "auto" and "could not find any running ray instance" in str(exc).lower():
                raise ConfigError(
                    "no running Ray cluster found (address auto)",
                    "start one with `ray start --head` (here or on the head node), or use --ray_address local",
                ) from None
            raise ConfigError(
                f"cannot connect to the Ray cluster at {address} ({_first_line(exc)})",
                "check the address and that the cluster is up (ray status on its head node), or use local",
            ) from None
        self._owns = True

    def map(self, runs: Iterable[Run], stop_at_target: bool, isolated: bool) -> Iterator[tuple[Run, dict]]:
        """Submit one task per run and yield ``(run, record)`` as tasks complete, in completion order.

        A ``RecipeError`` from a task is raised here as itself; a task whose worker died yields a status
        ``error`` record. Tasks still queued or running when this stops (an error, the caller closing the
        iterator) are cancelled.
        """
        ray = _import_ray()
        task = ray.remote(_ray_task)
        sized = [(run, trial_resources(run.trainer)) for run in runs]  # a refused setting submits nothing
        pending = {
            task.options(max_retries=0, name=f"benchmark run {run.key}", **resources).remote(
                run.to_dict(), stop_at_target, isolated
            ): run
            for run, resources in sized
        }
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    run = pending.pop(ref)
                    yield run, self._record(ray, ref, run)
        finally:
            if pending and ray.is_initialized():
                for ref in pending:
                    ray.cancel(ref, force=True)

    @staticmethod
    def _record(ray: Any, ref: Any, run: Run) -> dict[str, Any]:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:  # the task raised: a user error stops the benchmark
            cause = err.cause
            if isinstance(cause, RecipeError):
                raise cause from None
            rec = failed_record(run, f"ray task failed: {_first_line(cause or err)}")
        except ray.exceptions.RayError as err:  # the worker or its node died: recorded, retried next time
            rec = failed_record(run, f"ray worker died: {_first_line(err)}")
        rec["env"] = {"host": None}  # the process that trained it is gone: where it ran is unknown
        return rec

    def close(self) -> None:
        """Shut down Ray if this executor started or connected it."""
        if self._owns:
            self._owns = False
            _import_ray().shutdown()

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
