"""Evaluation under DDP gives the one-process metrics on the same checkpoint: every item counted once, none
padded in twice (``recipes.data.batching.ShardedBatchSampler``), the metric states summed over ranks (torchmetrics);
``predict`` writes the same rows in the same order.

Each split's size is checked to be odd, so two processes cannot share it evenly: the case where Lightning's
own distributed sampler would repeat an item to pad the shorter rank.
"""

from __future__ import annotations

import csv
import math

import pytest

from recipes.__main__ import main
from recipes.cli import build_cli
from tests.conftest import CONFIGS, IMAGE_FOLDER_SMALL, QUIET
from tests.test_image_fit import last_metrics
from tests.test_matrix import SPEECH

CASES = {
    "accuracy": ("image_classification_digits", ["--data.val_size", "201"], ["val/acc", "val/loss"]),
    # PNG files decoded by two worker processes per rank
    "accuracy_files_workers": (
        "image_folder",
        [*IMAGE_FOLDER_SMALL, "--data.val_fraction", "0.13"],
        ["val/acc", "val/loss"],
    ),
    "rmse": (
        "recommendation",
        ["--data.root", "{movielens}", "--model.net_kwargs", "{hidden: 16}"],
        ["val/rmse", "val/mae", "val/loss"],
    ),
    "hr_ndcg_full_ranking": (
        "recommendation_ranking",
        ["--model.net_kwargs", "{gmf_dim: 8, mlp_dims: [16, 8]}"],
        ["val/hr@10", "val/ndcg@10"],
    ),
    "cer_wer": (
        "speech_recognition",
        [*SPEECH, "--model.net_kwargs", "{dim: 32, hidden: 32, layers: 1}"],
        ["val/cer", "val/wer", "val/loss"],
    ),
}


def _val_size(args: list[str]) -> int:
    cli = build_cli(args, run=False)
    cli.datamodule.setup("validate")
    return len(cli.datamodule.val_dataloader().dataset)


@pytest.mark.parametrize("case", list(CASES))
def test_ddp_validation_equals_one_process(case, tmp_path, small_movielens, image_tree):
    name, extra, keys = CASES[case]
    extra = [a.replace("{movielens}", str(small_movielens)).replace("{image_tree}", str(image_tree)) for a in extra]
    args = ["--config", str(CONFIGS / f"{name}.yaml"), *QUIET, "--trainer.accelerator", "cpu", *extra]
    assert _val_size(args) % 2 == 1
    root = tmp_path / "fit"
    assert (
        main(
            [
                "fit",
                *args,
                "--trainer.default_root_dir",
                str(root),
                "--trainer.max_epochs",
                "1",
                "--trainer.limit_train_batches",
                "6",
                "--trainer.limit_val_batches",
                "0",
                "--trainer.num_sanity_val_steps",
                "0",
                "--model.scheduler.name",
                "constant",
            ]
        )
        == 0
    )
    ckpt = str(root / "checkpoints" / "last.ckpt")
    seen = {}
    for devices, strategy in ((1, "auto"), (2, "ddp_fork")):
        out = tmp_path / f"val{devices}"
        assert (
            main(
                [
                    "validate",
                    *args,
                    "--trainer.default_root_dir",
                    str(out),
                    "--trainer.devices",
                    str(devices),
                    "--trainer.strategy",
                    strategy,
                    "--ckpt_path",
                    ckpt,
                ]
            )
            == 0
        )
        seen[devices] = last_metrics(out)
    for key in keys:
        assert math.isfinite(seen[1][key])
        assert seen[2][key] == pytest.approx(seen[1][key], rel=1e-6, abs=1e-7), key
    rows = {}
    for devices, strategy in ((1, "auto"), (2, "ddp_fork")):
        out = tmp_path / f"pred{devices}.csv"
        assert (
            main(
                [
                    "predict",
                    *args,
                    "--trainer.default_root_dir",
                    str(tmp_path / f"p{devices}"),
                    "--trainer.devices",
                    str(devices),
                    "--trainer.strategy",
                    strategy,
                    "--ckpt_path",
                    ckpt,
                    "--predictions.output",
                    str(out),
                ]
            )
            == 0
        )
        rows[devices] = list(csv.reader(out.open()))
    assert len(rows[1]) > 2 and len(rows[2]) == len(rows[1]) and rows[2][0] == rows[1][0]  # one file, every row once
    for one, two in zip(rows[1][1:], rows[2][1:]):  # in the same order, with the same values
        assert len(one) == len(two)
        for a, b in zip(one, two):
            assert a == b or float(a) == pytest.approx(float(b), rel=1e-5, abs=1e-6), (one, two)
