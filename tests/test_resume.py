"""Kill a real fit with SIGKILL mid-epoch, resume it with ``--ckpt_path last``, and get bit for bit the weights
and the logged metrics of the run that was never interrupted (CPU, ``deterministic: true``).

What has to survive the kill: weights, optimizer and schedule or schedule-free state (Lightning), the
generators behind dropout, augmentation and negative sampling, each loader's place in its epoch and the
epoch's metric states (``recipes.resume_state``, ``recipes.data.batching``); mid-epoch ``last.ckpt`` every few steps
(``checkpoint.last_every_n_steps``).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from recipes.__main__ import main
from recipes.cli import build_cli
from tests.conftest import CONFIGS, IMAGE_FOLDER_SMALL, QUIET, ROOT, run_recipes

CASES = {
    # augmentation and dropout draw from the global generators
    "image": [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--data.augment",
        "true",
        "--trainer.max_epochs",
        "3",
    ],
    # schedule-free AdamW: its z/x state and train/eval switches instead of a schedule
    "schedule_free": [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--model.optimizer.name",
        "adamw_schedulefree",
        "--trainer.max_epochs",
        "2",
    ],
    # a composite: Muon for the CNN's hidden matrices and conv filters (2-D views), AdamW for the rest
    "muon": [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--model.optimizer",
        "{name: muon, lr: 0.02, fallback: {name: adamw, lr: 0.01}}",
        "--trainer.max_epochs",
        "2",
    ],
    # Adam, then SGD with momentum from optimizer step 13 (a checkpoint at 12 holds Adam's state) or 8 (SGD's)
    **{
        f"switch{at}": [
            "--config",
            str(CONFIGS / "image_classification_digits.yaml"),
            "--model.optimizer",
            f"{{name: adam, lr: 0.01, switch: {{name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, at_step: {at}}}}}",
            "--trainer.max_epochs",
            "2",
        ]
        for at in (8, 13)
    },
    # files decoded by two worker processes, random crops and flips drawn from each batch's seed
    "image_folder_workers": [
        "--config",
        str(CONFIGS / "image_folder.yaml"),
        *IMAGE_FOLDER_SMALL,
        "--data.crop_scale",
        "[0.5, 1.0]",
        "--data.batch_size",
        "64",
        "--trainer.max_epochs",
        "2",
    ],
    # fresh negatives every batch, from the sampler's per-batch seeds, sampled in two worker processes
    "recommendation": [
        "--config",
        str(CONFIGS / "recommendation_ranking.yaml"),
        "--trainer.max_epochs",
        "3",
        "--trainer.limit_train_batches",
        "9",
        "--trainer.limit_val_batches",
        "2",
        "--data.batch_size",
        "256",
        "--data.num_workers",
        "2",
    ],
}
KILL_AT = 14  # mid-epoch, two steps after the mid-epoch checkpoint at step 12
# (case, kill at step, the checkpoint that must be resumed from)
RUNS = [
    ("image", KILL_AT, 12),
    ("schedule_free", KILL_AT, 12),
    ("recommendation", KILL_AT, 12),
    ("image_folder_workers", KILL_AT, 12),
    ("muon", KILL_AT, 12),
    ("switch8", KILL_AT, 12),
    ("switch13", KILL_AT, 12),
    ("image", 22, 21),
]  # just after an epoch end: the epoch's metrics were reset after that checkpoint


def _logged(root: Path) -> dict[tuple[int, str], str]:
    out = {}
    for path in sorted((root / "logs").glob("version_*/metrics.csv")):
        with open(path) as fh:
            for row in csv.DictReader(fh):
                out.update({(int(row["step"]), k): v for k, v in row.items() if v and k not in ("step", "epoch")})
    return out


@pytest.mark.parametrize("case,kill_at,saved", RUNS, ids=[f"{c}-kill{k}" for c, k, _ in RUNS])
def test_sigkill_then_resume_equals_uninterrupted(case, kill_at, saved, tmp_path, image_tree):
    args = [
        *(a.replace("{image_tree}", str(image_tree)) for a in CASES[case]),
        *QUIET,
        "--trainer.deterministic",
        "true",
        "--trainer.log_every_n_steps",
        "1",
        "--checkpoint.last_every_n_steps",
        "4",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["fit", *args, "--trainer.default_root_dir", str(whole)]) == 0

    proc = run_recipes(
        "fit",
        *args,
        "--trainer.default_root_dir",
        str(killed),
        "--trainer.callbacks+=tests.killer.KillAtStep",
        "--trainer.callbacks.step",
        str(kill_at),
    )
    assert proc.returncode == -9, proc.stderr[-2000:]  # died by SIGKILL, nothing cleaned up
    interrupted = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert interrupted["global_step"] == saved and not list((killed / "checkpoints").glob(".*partial"))

    assert main(["fit", *args, "--trainer.default_root_dir", str(killed), "--ckpt_path", "last"]) == 0
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] > kill_at
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    logged_a, logged_b = _logged(whole), _logged(killed)
    after = {k: v for k, v in logged_a.items() if k[0] > saved}
    assert after and {k: logged_b.get(k) for k in after} == after  # every metric logged after the checkpoint
    assert any(k[1].startswith("val/") for k in after)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash inside the write leaves the previous ``last.ckpt`` whole (no truncated file to resume from)."""
    args = [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_epochs",
        "2",
    ]
    assert main(["fit", *args]) == 0
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    def crash(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash)
    with pytest.raises(OSError, match="disk full"):
        main(["fit", *args, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert last.read_bytes() == before


class _Crash(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 7:
            raise RuntimeError("crash at step 7")


def test_time_interval_writes_last_mid_epoch(tmp_path):
    """``last_every_seconds``: with a tiny interval every step is due, so a crash loses nothing."""
    cli = build_cli(
        [
            "--config",
            str(CONFIGS / "image_classification_digits.yaml"),
            *QUIET,
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.max_epochs",
            "1",
            "--checkpoint.last_every_seconds",
            "1e-9",
        ],
        run=False,
    )
    cli.trainer.callbacks.append(_Crash())
    with pytest.raises(RuntimeError, match="crash at step 7"):
        cli.trainer.fit(cli.model, cli.datamodule)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 7


def test_sigkill_of_a_ddp_job_then_resume_equals_uninterrupted(tmp_path):
    """Two processes (Lightning's ``ddp`` launcher) killed together mid-epoch, resumed: the same weights and
    metrics as two processes never stopped; each rank's generators and metric states come back as its own."""
    args = [
        *CASES["image"],
        *QUIET,
        "--trainer.deterministic",
        "true",
        "--trainer.log_every_n_steps",
        "1",
        "--checkpoint.last_every_n_steps",
        "4",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def fit(root: Path, *extra: str) -> subprocess.CompletedProcess:  # its own session: a group kill stays inside
        cmd = [sys.executable, "-m", "recipes", "fit", *args, "--trainer.default_root_dir", str(root), *extra]
        return subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400, start_new_session=True
        )

    assert fit(whole).returncode == 0
    proc = fit(
        killed,
        "--trainer.callbacks+=tests.killer.KillAtStep",
        "--trainer.callbacks.step",
        "14",
        "--trainer.callbacks.group",
        "true",
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 12  # mid-epoch 2
    resumed = fit(killed, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 3 * 10  # 21 batches: 10 a rank an epoch
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    after = {k: v for k, v in _logged(whole).items() if k[0] > 12}
    assert after and {k: _logged(killed).get(k) for k in after} == after


def test_a_max_steps_stop_mid_epoch_resumes_with_a_larger_max_steps(tmp_path):
    """Lightning counts an epoch cut short by max_steps as done; last.ckpt keeps that step's place instead."""
    args = [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        *QUIET,
        "--trainer.deterministic",
        "true",
        "--model.scheduler.name",
        "constant",
        "--trainer.max_epochs",
        "-1",
        "--trainer.limit_val_batches",
        "1",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["fit", *args, "--trainer.default_root_dir", str(whole), "--trainer.max_steps", "30"]) == 0
    assert main(["fit", *args, "--trainer.default_root_dir", str(parts), "--trainer.max_steps", "12"]) == 0
    assert (
        main(
            ["fit", *args, "--trainer.default_root_dir", str(parts), "--trainer.max_steps", "30", "--ckpt_path", "last"]
        )
        == 0
    )
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(parts / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 30
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_mid_epoch_saves_leave_the_best_checkpoint_alone(tmp_path):
    """A last.ckpt written at the step a validation follows must not stop that validation's top-k save."""
    args = [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_epochs",
        "2",
        "--checkpoint.last_every_n_steps",
        "1",
    ]
    assert main(["fit", *args]) == 0
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(names) == 2 and "last.ckpt" in names  # the best (top-1) and the last
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
