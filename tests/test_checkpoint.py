"""``last.ckpt`` is the last state even when the monitored metric stopped improving (Lightning 2.6 keeps
it at the best step), so ``--ckpt_path last`` resumes where training stopped and ``best`` still works."""

from __future__ import annotations

import torch

from recipes.__main__ import main
from recipes.cli import best_checkpoint
from tests.conftest import CONFIGS, QUIET


def digits_args(root):
    return [
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "3",
    ]


def test_last_checkpoint_follows_training_after_the_best(tmp_path):
    # mode min on accuracy: the first validation is the "best", every later one is worse
    assert main(["fit", *digits_args(tmp_path), "--checkpoint.monitor", "val/acc", "--checkpoint.mode", "min"]) == 0
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best_path = best_checkpoint(str(tmp_path / "checkpoints"))
    best = torch.load(best_path, weights_only=True)
    assert best["epoch"] == 0 and last["epoch"] == 2  # 3 epochs: best from the first, last from the final
    assert last["global_step"] > best["global_step"]
    assert (
        main(
            [
                "fit",
                *digits_args(tmp_path),
                "--trainer.max_epochs",
                "4",
                "--ckpt_path",
                "last",
                "--checkpoint.monitor",
                "val/acc",
                "--checkpoint.mode",
                "min",
            ]
        )
        == 0
    )
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 3 and resumed["global_step"] == last["global_step"] * 4 // 3
