"""Real launches of several processes, the way users go multi-GPU and multi-node, on this machine's CPU (gloo):
Lightning's own ``ddp`` launcher (it re-runs the command for rank 1), torchrun with two "nodes" meeting
through a c10d rendezvous on 127.0.0.1 (Lightning reads torchelastic's environment), and two processes
started by hand with ``--trainer.num_nodes 2`` and ``NODE_RANK`` (what a SLURM or cluster script does).

Each run proves the data was split across the processes: scikit-learn digits gives 21 training batches of
64 an epoch on one process; two processes take 10 each (the 21st is dropped so both run the same steps).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import CONFIGS, QUIET, ROOT, run_recipes
from tests.test_matrix import SPEECH

DIGITS = [
    "--config",
    str(CONFIGS / "image_classification_digits.yaml"),
    *QUIET,
    "--trainer.accelerator",
    "cpu",
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_val_batches",
    "2",
]
STEPS_ON_TWO = 2 * 10  # epochs x (21 batches // 2 processes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    drop = (
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "NODE_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "GROUP_RANK",
        "TORCHELASTIC_RUN_ID",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SLURM_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def _wait(procs: list[subprocess.Popen], timeout: int = 400) -> list[str]:
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            outs.append(out)
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def _global_step(root: Path) -> int:
    return torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def test_lightning_ddp_launcher_runs_speech(tmp_path):
    # The recipe whose batch sampler Lightning could not shard before, through the launcher users call.
    proc = run_recipes(
        "fit",
        "--config",
        str(CONFIGS / "speech_recognition.yaml"),
        *QUIET,
        *SPEECH,
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_val_batches",
        "2",
        "--model.net_kwargs",
        "{dim: 32, hidden: 32, layers: 1}",
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr
    # 76 training utterances in batches of 4: 19 batches, 18 shared by two processes
    assert _global_step(tmp_path) == 9


def test_torchrun_two_nodes_c10d(tmp_path):
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"127.0.0.1:{port}",
        "--rdzv_id",
        "recipes-test",
        "-m",
        "recipes",
        "fit",
        *DIGITS,
        "--trainer.num_nodes",
        "2",
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "ddp",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = _wait(procs)
    assert any("MEMBER: 2/2" in out for out in outs)
    assert _global_step(tmp_path) == STEPS_ON_TWO


def test_num_nodes_with_node_rank(tmp_path):
    port = str(_free_port())
    cmd = [
        sys.executable,
        "-m",
        "recipes",
        "fit",
        *DIGITS,
        "--trainer.num_nodes",
        "2",
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "ddp",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=_env(NODE_RANK=str(n), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(2)
    ]
    outs = _wait(procs)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outs[1]
    assert _global_step(tmp_path) == STEPS_ON_TWO
