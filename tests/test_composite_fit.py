"""Composite optimizers and normalized weight decay through real fits: the documented command, every task in
both precisions on one device and under DDP, and the resolved decay against the paper's formula."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recipes.__main__ import main
from recipes.modules.optim import factory
from tests.conftest import CONFIGS, QUIET
from tests.test_matrix import CNN, SPEECH, _args, fit_evaluate_predict_resume

# Muon for hidden matrices, AdamW for the rest, and SGD + Nesterov over everything for the second half.
COMPOSITE = (
    "{name: muon, lr: 0.02, fallback: {name: adamw, lr: 0.003},"
    " switch: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, at_fraction: 0.5}}"
)
TASKS = {
    "image_classification": [*CNN, "--data.val_size", "301"],
    "recommendation": [],
    "speech_recognition": [*SPEECH, "--model.net_kwargs", "{dim: 32, hidden: 32, layers: 1}"],
    "regression": ["--trainer.val_check_interval", "3", "--data.num_train", "384", "--data.num_val", "301"],
}


def _optimizer_state(root: Path) -> dict:
    return torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"][0]


def test_the_documented_muon_command_trains(tmp_path):
    root = tmp_path / "run"
    args = [
        "fit",
        "--config",
        "image_classification",
        "--model.optimizer.name",
        "muon",
        "--model.optimizer.fallback",
        "{name: adamw}",
        *QUIET,
        *CNN,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "60",
        "--trainer.limit_val_batches",
        "3",
        "--data.val_size",
        "384",
    ]
    assert main(args) == 0
    state = _optimizer_state(root)
    assert sorted(state["parts"]) == ["fallback", "main"] and state["steps"] == 60
    assert {g["name"].split("/")[0] for g in state["groups"]} == {"muon", "adamw"}
    metrics = (root / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    acc = [float(r.split(",")[header.index("val/acc")]) for r in metrics[1:] if r.split(",")[header.index("val/acc")]]
    assert acc[-1] > 0.6  # ten classes: chance is 0.1


@pytest.mark.parametrize("precision,devices", [("32-true", 1), ("bf16-mixed", 2)], ids=["32-1dev", "bf16-ddp2"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_fits_resumes_and_switches_with_a_composite(task, precision, devices, tmp_path, monkeypatch):
    import tests.test_matrix as matrix

    monkeypatch.setitem(matrix.SMALL, task, TASKS[task])
    root = tmp_path / "run"
    args = [*_args(task, root, precision, devices), "--model.optimizer.betas", "null", "--model.optimizer", COMPOSITE]
    fit_evaluate_predict_resume(args, root, devices)
    state = _optimizer_state(root)
    assert state["windows"]["switch"][0] == state["windows"]["fallback"][1] > 0  # kept from the first fit
    assert state["steps"] > state["windows"]["switch"][0] and state["parts"]["switch"]["state"]  # it switched
    assert not state["parts"]["fallback"]["state"]  # and freed the moments it no longer needs


def test_normalized_weight_decay_is_resolved_from_the_run_and_logged(tmp_path, monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(factory, "rank_zero_info", lines.append)
    root = tmp_path / "run"
    args = [
        "fit",
        "--config",
        str(CONFIGS / "regression.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_steps",
        "40",
        "--model.optimizer.weight_decay",
        "null",
        "--model.optimizer.weight_decay_norm",
        "0.5",
    ]
    assert main(args) == 0
    b, size, epochs = 64, 2048, 40 * 64 / 2048  # the config's batch size and training set; 40 steps
    expected = 0.5 * (b / (size * epochs)) ** 0.5
    decays = {g["weight_decay"] for g in _optimizer_state(root)["param_groups"]}
    assert max(decays) == pytest.approx(expected) and expected == pytest.approx(0.5 / 40**0.5)
    assert any(f"b {b} samples per step, B {size} training samples, T 1.25 epochs" in line for line in lines)


def test_distributed_muon_trains_under_ddp(tmp_path):
    """DistributedMuon shards its Newton-Schulz work over the processes; one device is refused
    (tests/test_registry_tasks.py), two train."""
    root = tmp_path / "run"
    args = [
        *_args("image_classification", root, "32-true", 2),
        *CNN,
        "--model.optimizer",
        "{name: distributedmuon, lr: 0.02}",
    ]
    assert main(["fit", *args]) == 0
    state = _optimizer_state(root)
    assert sorted(state["parts"]) == ["fallback", "main"] and state["parts"]["main"]["state"]


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_a_composite_fits_and_resumes_on_cuda(precision, tmp_path):
    """The GradScaler unscales the composite's groups (the model's parameters) before its parts step."""
    root = tmp_path / "run"
    args = _args("image_classification", root, precision, 1, accelerator="gpu")
    args += ["--model.optimizer", COMPOSITE]
    fit_evaluate_predict_resume(args, root, 1)
    assert _optimizer_state(root)["parts"]["switch"]["state"]
