"""Real short fits of the image recipe through the CLI: fit/validate/test/predict, precision, DDP,
resume, divergence, determinism, EMA and schedule-free optimizers."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import lightning as L
import pytest
import torch
from torchvision.io import write_png

from recipes.__main__ import main
from recipes.data.image.datamodule import DigitsDataModule
from recipes.modules.image.classifier import ImageClassifier
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.optim.callbacks import EMA
from tests.conftest import CONFIGS, QUIET, run_recipes

DIGITS = ["--config", str(CONFIGS / "image_classification_digits.yaml"), *QUIET]


def last_metrics(root: Path) -> dict[str, float]:
    """The last logged value of every column in the newest CSV log under ``root``."""
    newest = max((root / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    out: dict[str, float] = {}
    with open(newest) as fh:
        for row in csv.DictReader(fh):
            out.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return out


def test_fit_test_and_predict_digits(tmp_path):
    root = tmp_path / "run"
    assert main(["fit", *DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "4"]) == 0
    ckpts = {p.name for p in (root / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in ckpts and len(ckpts) == 2  # the best and the last
    fit = last_metrics(root)
    assert fit["val/acc"] > 0.85 and fit["train/loss"] < 1.0

    assert main(["validate", *DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", "best"]) == 0
    assert last_metrics(root)["val/acc"] == pytest.approx(max(fit["val/acc"], last_metrics(root)["val/acc"]))
    assert main(["test", *DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", "best"]) == 0
    assert last_metrics(root)["test/acc"] > 0.85

    # predict on a folder of real PNGs (written from the test split) plus one file that cannot be decoded
    dm = DigitsDataModule()
    dm.setup("test")
    x, y = dm.splits["test"].tensors
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(40):
        write_png(x[i], str(folder / f"{i:03d}_label{y[i].item()}.png"))
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                *DIGITS,
                "--trainer.default_root_dir",
                str(root),
                "--ckpt_path",
                "best",
                "--data.predict_dir",
                str(folder),
                "--predictions.output",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 40 and set(rows[0]) == {"id", "target", "prediction", "label", "probability"}
    correct = sum(r["label"] == Path(r["id"]).stem.split("label")[1] for r in rows)
    assert correct / len(rows) > 0.8
    assert not any("broken" in r["id"] for r in rows)

    # predict without a folder writes the test split
    assert main(["predict", *DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", "last"]) == 0
    rows = list(csv.DictReader(open(root / "predictions.csv")))
    assert len(rows) == 297 and sum(r["target"] == r["prediction"] for r in rows) / 297 > 0.85


def test_fashion_mnist_short_real_fit(tmp_path):
    args = [
        "--config",
        str(CONFIGS / "image_classification.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "80",
        "--trainer.limit_val_batches",
        "10",
        "--trainer.limit_test_batches",
        "20",
    ]
    assert main(["fit", *args]) == 0
    assert last_metrics(tmp_path)["val/acc"] > 0.75
    assert main(["test", *args, "--ckpt_path", "last"]) == 0
    assert last_metrics(tmp_path)["test/acc"] > 0.75


def test_bf16_mixed_fit_on_cpu_learns(tmp_path):  # 16-mixed needs CUDA (tests/test_gpu.py); on a CPU it is an error
    assert (
        main(
            [
                "fit",
                *DIGITS,
                "--trainer.default_root_dir",
                str(tmp_path),
                "--trainer.precision",
                "bf16-mixed",
                "--trainer.max_epochs",
                "3",
            ]
        )
        == 0
    )
    m = last_metrics(tmp_path)
    assert m["val/acc"] > 0.7 and m["train/loss"] == m["train/loss"]


def test_resume_from_last_checkpoint(tmp_path):
    base = ["fit", *DIGITS, "--trainer.default_root_dir", str(tmp_path)]
    assert main([*base, "--trainer.max_epochs", "1"]) == 0
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert main([*base, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    second = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0 and second["epoch"] == 1
    assert second["global_step"] == 2 * first["global_step"]
    # the schedule resumed where it stopped rather than restarting its warmup
    assert second["lr_schedulers"][0]["last_epoch"] == second["global_step"]


def test_ddp_two_processes_on_cpu(tmp_path):
    out = run_recipes(
        "fit",
        *DIGITS,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.accelerator",
        "cpu",
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.max_epochs",
        "3",
        timeout=400,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    # 1,300 training images, 64 a batch: 21 batches, the last dropped so both processes take 10 an epoch
    assert ckpt["global_step"] == 3 * 10
    assert last_metrics(tmp_path)["val/acc"] > 0.6


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    assert main(["fit", *DIGITS, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1"]) == 0
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = _sha(last)
    out = run_recipes(
        "fit",
        *DIGITS,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--model.optimizer.name",
        "sgd",
        "--model.optimizer.lr",
        "1e30",
        "--model.scheduler.name",
        "constant",
    )
    assert out.returncode == 1
    assert (
        "the training loss became nan" in out.stderr.splitlines()[-1]
        or "the training loss became inf" in out.stderr.splitlines()[-1]
    )
    assert "Traceback" not in out.stderr
    assert _sha(last) == before
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_deterministic_runs_are_identical(tmp_path):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "fit",
                    *DIGITS,
                    "--trainer.default_root_dir",
                    str(tmp_path / name),
                    "--trainer.max_epochs",
                    "1",
                    "--trainer.deterministic",
                    "true",
                ]
            )
            == 0
        )
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def test_ema_clipping_and_accumulation(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(
        net="cnn", net_kwargs={"widths": [16, 32]}, image_size=8, optimizer=OptimizerConfig(lr=0.01)
    )
    ema = EMA(decay=0.9)
    trainer = _trainer(tmp_path, max_epochs=2, callbacks=[ema], gradient_clip_val=0.5, accumulate_grad_batches=2)
    dm = DigitsDataModule()
    trainer.fit(model, dm)
    assert trainer.global_step == 2 * 11  # 21 batches of 64 an epoch, every 2 accumulated (the last one alone)
    # at the end of fit the model holds the average, which differs from the raw weights it averaged
    avg = ema._average_model.module.state_dict()
    assert all(torch.equal(v, avg[k]) for k, v in model.state_dict().items() if k in avg)
    assert trainer.validate(model, dm, verbose=False)[0]["val/acc"] > 0.7


def test_schedule_free_switches_modes(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(
        net="cnn",
        net_kwargs={"widths": [16, 32]},
        image_size=8,
        optimizer=OptimizerConfig(name="adamw_schedulefree", lr=0.01),
        scheduler=SchedulerConfig(name="cosine", warmup_steps=5),
    )
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(model, DigitsDataModule())
    opt = trainer.optimizers[0]
    assert not trainer.lr_scheduler_configs  # schedule-free: no scheduler is attached
    assert opt.param_groups[0]["train_mode"] is False and opt.defaults["warmup_steps"] == 5
    assert trainer.callback_metrics["val/acc"] > 0.7
