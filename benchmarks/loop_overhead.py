"""Loop overhead: the image recipe's steady-state step time against a plain PyTorch loop.

    python benchmarks/loop_overhead.py [--steps 120]

Both run the previous default Fashion-MNIST config (``benchmarks/baselines/image_classification_v1.yaml``:
fp32, AdamW; the plain loop has no autocast, so the comparison stays like for like): its model, data
(in-memory batches, normalized on arrival), AdamW from the factory and the per-step cosine schedule. The
recipe runs through the CLI-built Trainer exactly as configured (loggers, metrics, checkpoint callback; no
progress bar, since this script prints its own table). Rounds alternate, and the table gives the median step time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning as L
import torch

from benchmarks.common import print_table
from recipes.cli import build_cli
from recipes.modules.optim import build_scheduler, create_optimizer


class StepTimer(L.Callback):
    """Wall time between consecutive training-batch starts: data, forward, backward, step and hooks."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stamps.append(time.perf_counter())


def recipe_steps(steps: int) -> list[float]:
    with tempfile.TemporaryDirectory() as root:
        cli = build_cli(
            [
                "--config",
                "benchmarks/baselines/image_classification_v1.yaml",
                "--trainer.default_root_dir",
                root,
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.max_epochs",
                "1",
                "--trainer.limit_train_batches",
                str(steps + 1),
                "--trainer.limit_val_batches",
                "0",
                "--trainer.enable_model_summary",
                "false",
            ],
            run=False,
        )
        timer = StepTimer()
        cli.trainer.callbacks.append(timer)
        cli.trainer.fit(cli.model, cli.datamodule)
    return [(b - a) * 1e3 for a, b in zip(timer.stamps, timer.stamps[1:])]


def plain_steps(steps: int) -> list[float]:
    with tempfile.TemporaryDirectory() as root:
        cli = build_cli(
            ["--config", "benchmarks/baselines/image_classification_v1.yaml", "--trainer.default_root_dir", root],
            run=False,
        )
    model, dm = cli.model, cli.datamodule
    dm.setup("fit")
    loader = dm.train_dataloader()

    opt = create_optimizer(model, model.optimizer_config)
    sched = build_scheduler(opt, model.scheduler_config, len(loader))
    model.train()
    stamps = []
    for i, (x, y) in enumerate(loader):
        stamps.append(time.perf_counter())
        if i > steps:
            break
        x = (x.float() / 255.0 - dm.mean) / dm.std
        loss = model.criterion(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    plain, recipe = [], []
    for _ in range(args.rounds):
        plain += plain_steps(args.steps)[10:]  # the first steps warm up allocators and kernels
        recipe += recipe_steps(args.steps)[10:]
    p, r = statistics.median(plain), statistics.median(recipe)
    print_table(
        "Training step, previous default image config (batch 128), median over steady-state steps",
        ["loop", "ms/step", "ratio"],
        [["plain PyTorch", p, 1.0], ["recipe (Lightning)", r, r / p]],
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
