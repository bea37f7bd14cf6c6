"""Transfer: pretrain on Fashion-MNIST, fine-tune on the MNIST 5k subset with a new head, compare with scratch.

    python -m benchmarks.transfer [--pretrain_epochs 2] [--budgets 1 3] [--seeds 0 1 2] [--train_batches 0 5]

Everything runs through ``python -m recipes`` as a user runs it. The pretraining is
``configs/image_classification.yaml`` for ``--pretrain_epochs``; fine-tuning is
``configs/image_finetune_mnist5k.yaml`` from its last checkpoint; scratch is
``configs/image_classification_mnist5k.yaml`` (the recipe's own settings for this data). Both see the same
3,500 training images (or the first ``--train_batches`` batches of 128 of each epoch), the same number of
epochs, and are tested on the same 1,000 held-out images with their best-validation checkpoint.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import logged_metrics, print_table

SCRATCH = "configs/image_classification_mnist5k.yaml"
FINETUNE = "configs/image_finetune_mnist5k.yaml"


def recipes(*args: str) -> float:
    """Run ``python -m recipes ARGS``; returns its wall time in seconds."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "recipes", *args, "--trainer.enable_progress_bar", "false"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"python -m recipes {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - start


def fit_and_test(
    config: str, root: Path, epochs: int, seed: int, train_batches: int, extra: list[str]
) -> tuple[float, float]:
    """(test accuracy of the best checkpoint, fit wall seconds)."""
    common = ["--config", config, "--trainer.default_root_dir", str(root), "--seed_everything", str(seed), *extra]
    limit = ["--trainer.limit_train_batches", str(train_batches)] if train_batches else []
    wall = recipes("fit", *common, "--trainer.max_epochs", str(epochs), *limit)
    recipes("test", *common, "--ckpt_path", "best")
    return logged_metrics(root)["test/acc"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_epochs", type=int, default=2)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 3], help="fine-tuning / scratch epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train_batches", type=int, nargs="+", default=[0], help="batches per epoch (0: all 28)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pretrain"
        pre_wall = recipes(
            "fit",
            "--config",
            "configs/image_classification.yaml",
            "--trainer.default_root_dir",
            str(pre),
            "--trainer.max_epochs",
            str(args.pretrain_epochs),
        )
        pre_val = logged_metrics(pre)["val/acc"]
        ckpt = str(pre / "checkpoints" / "last.ckpt")
        rows = []
        for batches in args.train_batches:
            for epochs in args.budgets:
                acc: dict[str, list[float]] = {"scratch": [], "fine-tuned": []}
                wall: dict[str, list[float]] = {"scratch": [], "fine-tuned": []}
                for seed in args.seeds:
                    for name, config, extra in (
                        ("scratch", SCRATCH, []),
                        ("fine-tuned", FINETUNE, ["--model.pretrained", ckpt]),
                    ):
                        a, w = fit_and_test(
                            config, Path(tmp) / f"{name}-{batches}-{epochs}-{seed}", epochs, seed, batches, extra
                        )
                        acc[name].append(a)
                        wall[name].append(w)
                images = 128 * batches if batches else 3500
                for name in acc:
                    rows.append(
                        [
                            images,
                            epochs,
                            name,
                            len(args.seeds),
                            f"{statistics.mean(acc[name]):.4f}",
                            f"{min(acc[name]):.4f}-{max(acc[name]):.4f}",
                            f"{statistics.median(wall[name]):.0f}",
                        ]
                    )
    print(
        f"pretraining: configs/image_classification.yaml, {args.pretrain_epochs} epochs on Fashion-MNIST, "
        f"val acc {pre_val:.4f}, {pre_wall:.0f} s"
    )
    print_table(
        "MNIST 5k: fine-tuned from Fashion-MNIST vs from scratch (test acc of the best-val checkpoint, 1,000 images)",
        ["train images/epoch", "epochs", "start", "seeds", "mean test acc", "min-max", "fit wall s (median)"],
        rows,
    )


if __name__ == "__main__":
    main()
