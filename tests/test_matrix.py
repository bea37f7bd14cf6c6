"""Every runnable config under ``configs/`` x precision x devices: fit a few steps, validate, test and predict
from the checkpoint, then resume.

Parametrized over the folder, so a new config is in the matrix without anyone adding it here; ``SMALL``
only shrinks data that would otherwise make the suite slow (a config missing from it runs with the generic
limits). Two processes run as Lightning's ``ddp_fork`` inside the test process: the same DDPStrategy,
process group (gloo) and samplers as ``--trainer.strategy ddp``, without re-importing torch in each rank;
tests/test_multinode.py launches real processes through ``ddp``, torchrun and ``num_nodes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from recipes.__main__ import main
from tests.conftest import CONFIGS, IMAGE_FOLDER_SMALL, QUIET

RUNNABLE = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
PRECISIONS = ["32-true", "bf16-mixed"]  # 16-mixed needs CUDA: tests/test_gpu.py

SPEECH = ["--data.include", '["digits/*"]', "--data.batch_size", "4"]
CNN = ["--model.net_kwargs", "{widths: [8, 16]}"]  # the pretraining fixture uses it too, so transfer loads weights
# The smallest data and networks that still exercise each path; {name} is a fixture's path (test below).
SMALL: dict[str, list[str]] = {
    "image_classification": [*CNN, "--data.val_size", "301"],
    "image_classification_resnet18": ["--data.val_size", "301", "--data.batch_size", "4"],
    "image_classification_mnist5k": [*CNN, "--data.val_size", "301"],
    "image_finetune_mnist5k": [
        *CNN,
        "--data.val_size",
        "301",
        "--model.pretrained",
        "{pretrained}",
        "--model.finetune.freeze_steps",
        "2",
    ],
    # its warmup is 5 steps: 3 batches an epoch keep the 2-epoch run longer than that
    "image_classification_digits": ["--data.val_size", "201", "--trainer.limit_train_batches", "3"],
    # real PNG files decoded by two worker processes per loader, in every precision and under DDP
    "image_folder": [*IMAGE_FOLDER_SMALL, "--data.crop_fraction", "1.0"],
    "regression": ["--trainer.val_check_interval", "2", "--data.num_train", "384", "--data.num_val", "301"],
    "speech_recognition": [*SPEECH, "--model.net_kwargs", "{dim: 32, hidden: 32, layers: 1, cell: lstm}"],
    "speech_recognition_conformer": [
        *SPEECH,
        "--model.net_kwargs",
        "{dim: 32, heads: 2, ffn_dim: 64, layers: 1, kernel_size: 7}",
    ],
    "speech_whisper": [
        *SPEECH,
        "--model.pretrained",
        "{whisper}",
        "--data.batch_size",
        "1",
        "--model.max_new_tokens",
        "8",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.limit_test_batches",
        "1",
        "--trainer.limit_predict_batches",
        "1",
    ],
    "recommendation": ["--data.root", "{movielens}", "--model.net_kwargs", "{hidden: 16}"],
    "recommendation_mf": ["--data.root", "{movielens}", "--model.net_kwargs", "{dim: 8}"],
    "recommendation_ranking": ["--data.root", "{movielens}", "--model.net_kwargs", "{gmf_dim: 8, mlp_dims: [16, 8]}"],
    "recommendation_text_tower": [
        "--data.root",
        "{movielens}",
        "--model.net_kwargs",
        "{pretrained: {minilm}, dim: 16, hybrid: true, max_length: 12, grad_items: 16}",
    ],
}
LIMITS = [
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.limit_test_batches",
    "1",
    "--trainer.limit_predict_batches",
    "1",
    "--trainer.num_sanity_val_steps",
    "0",
    "--trainer.log_every_n_steps",
    "1",
    "--trainer.max_steps",
    "-1",
    "--data.batch_size",
    "16",
]


@pytest.fixture(scope="session")
def pretrained_image(tmp_path_factory) -> Path:
    """A Fashion-MNIST checkpoint for the transfer config (its default points at a full pretraining run)."""
    root = tmp_path_factory.mktemp("pretrain")
    args = [
        "fit",
        "--config",
        str(CONFIGS / "image_classification.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        *CNN,
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "1",
    ]
    assert main(args) == 0
    return root / "checkpoints" / "last.ckpt"


def _fill(arg: str, fixtures: dict[str, Path]) -> str:
    """``arg`` with each ``{fixture}`` replaced by that fixture's path."""
    for key, path in fixtures.items():
        arg = arg.replace("{" + key + "}", str(path))
    return arg


def _args(
    name: str,
    root: Path,
    precision: str,
    devices: int,
    accelerator: str = "cpu",
    strategy: str = "ddp_fork",
    **fixtures: Path,
) -> list[str]:
    small = [_fill(a, fixtures) for a in SMALL.get(name, [])]
    out = [
        "--config",
        str(CONFIGS / f"{name}.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        *LIMITS,
        "--trainer.precision",
        precision,
        "--trainer.accelerator",
        accelerator,
        "--trainer.devices",
        str(devices),
        *small,
    ]
    return out + (["--trainer.strategy", strategy] if devices > 1 else [])


def _step(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]


def fit_evaluate_predict_resume(
    args: list[str], root: Path, devices: int, run: Callable[[list[str]], int] = main
) -> None:
    """One cell of the matrix: fit, validate and test the best checkpoint, predict from the last, resume."""
    assert run(["fit", *args]) == 0
    last = root / "checkpoints" / "last.ckpt"
    steps = _step(last)
    assert steps > 0
    for command in ("validate", "test"):
        assert run([command, *args, "--ckpt_path", "best"]) == 0
    pred = root / "pred.csv"
    assert run(["predict", *args, "--ckpt_path", "last", "--predictions.output", str(pred)]) == 0
    assert len(pred.read_text().splitlines()) > 1  # one file, every process's rows
    assert run(["fit", *args, "--trainer.max_epochs", "3", "--ckpt_path", "last"]) == 0
    assert _step(last) == steps * 3 // 2  # one more epoch of the same length, continued from the checkpoint


@pytest.mark.parametrize("devices", [1, 2], ids=["1dev", "ddp2"])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_fit_evaluate_predict_resume(
    name, precision, devices, tmp_path, pretrained_image, small_movielens, tiny_whisper, tiny_minilm, image_tree
):
    root = tmp_path / "run"
    fixtures = {"pretrained": pretrained_image, "movielens": small_movielens, "whisper": tiny_whisper}
    fixtures.update(minilm=tiny_minilm, image_tree=image_tree)
    args = _args(name, root, precision, devices, **fixtures)
    fit_evaluate_predict_resume(args, root, devices)


@pytest.mark.parametrize("name", RUNNABLE)
def test_fast_dev_run(name, tmp_path, pretrained_image, small_movielens, tiny_whisper, tiny_minilm, image_tree):
    """Lightning's smoke test, ``--trainer.fast_dev_run true``, runs on every shipped config (a step of each stage)."""
    fixtures = {"pretrained": pretrained_image, "movielens": small_movielens, "whisper": tiny_whisper}
    fixtures.update(minilm=tiny_minilm, image_tree=image_tree)
    small = [_fill(a, fixtures) for a in SMALL.get(name, [])]
    args = ["--config", str(CONFIGS / f"{name}.yaml"), *QUIET, "--trainer.default_root_dir", str(tmp_path), *small]
    assert main(["fit", *args, "--trainer.accelerator", "cpu", "--trainer.fast_dev_run", "true"]) == 0
    assert not list(tmp_path.rglob("*.ckpt"))  # a smoke test writes no checkpoint


def _task_modules() -> dict[str, str]:
    """Each task module class of the shipped configs -> the first config that uses it."""
    import yaml

    out: dict[str, str] = {}
    for name in RUNNABLE:
        model = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["model"]
        out.setdefault(model["class_path"].rsplit(".", 1)[1], name)
    return out


TASK_MODULES = _task_modules()


@pytest.mark.parametrize("module", sorted(TASK_MODULES))
def test_task_module_contract(
    module, tmp_path, pretrained_image, small_movielens, tiny_whisper, tiny_minilm, image_tree
):
    """What the task-module base owns, for every task module: schedule-free optimizers train in train mode and
    evaluate in eval mode, the settings are stored as plain hyperparameters, and a checkpoint reloads the module."""
    import lightning as L

    from recipes.cli import build_cli
    from recipes.modules.config import plain
    from recipes.modules.optim import OptimizerConfig

    name = TASK_MODULES[module]
    fixtures = {"pretrained": pretrained_image, "movielens": small_movielens, "whisper": tiny_whisper}
    fixtures.update(minilm=tiny_minilm, image_tree=image_tree)
    args = _args(name, tmp_path, "32-true", 1, **fixtures)
    args += ["--trainer.max_epochs", "1", "--trainer.val_check_interval", "2"]  # after the 2 batches of the epoch

    class Modes(L.Callback):
        seen: dict[str, set] = {"train": set(), "val": set()}

        def on_train_batch_end(self, trainer, *_):
            self.seen["train"].add(trainer.optimizers[0].param_groups[0]["train_mode"])

        def on_validation_batch_end(self, trainer, *_):
            if trainer.optimizers:
                self.seen["val"].add(trainer.optimizers[0].param_groups[0]["train_mode"])

    cli = build_cli(args, run=False)
    configured = cli.model.optimizer_config
    cli.model.optimizer_config = OptimizerConfig(name="adamw_schedulefree", lr=1e-3)
    modes = Modes()
    cli.trainer.callbacks.append(modes)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert modes.seen == {"train": {True}, "val": {False}}
    hparams = cli.model.hparams  # the configured settings, as plain values
    assert hparams["optimizer"] == plain(configured) and isinstance(hparams["scheduler"], dict)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    loaded = type(cli.model).load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    state, again = cli.model.state_dict(), loaded.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
