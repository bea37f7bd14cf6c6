"""ID-only recommenders against the pretrained text item tower, overall and on cold items, as a user runs them.

    python -m benchmarks.text_tower            # every run below
    python -m benchmarks.text_tower --only "text tower" popularity   # the runs whose name contains one of these

Rating: seeded random 80/10/10, test RMSE of the best checkpoint over all test ratings and over those of
cold items (items with <= 5 training ratings: 431 items, 160 test ratings). Ranking: leave-last-out, HR@10
and NDCG@10 by full ranking over every item the user has not interacted with, overall (943 users) and over
users whose held-out item is cold; ranking uses a cold threshold of 20 training interactions because only
16 held-out items have <= 5 (99 have <= 20). Full ranking puts almost no cold item in anyone's top 10, so
the same checkpoint is also tested against 100 sampled unrated items (``sampled100``), where cold HR@10 has
room to differ. ID-only models: the recipes' own configs and overrides
(benchmarks/recommendation.py); the text tower: configs/recommendation_text_tower.yaml.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import logged_metrics, print_table
from recipes.__main__ import main
from recipes.cli import best_checkpoint

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
RATING, MF, RANKING, TEXT = (
    "configs/recommendation.yaml",
    "configs/recommendation_mf.yaml",
    "configs/recommendation_ranking.yaml",
    "configs/recommendation_text_tower.yaml",
)
TEXT_RANKING = [
    "--model.class_path",
    "recipes.modules.recommendation.ranking.RankingRecommender",
    "--data.task",
    "ranking",
    "--data.split",
    "leave_last_out",
    "--model.loss",
    "bpr",
    "--data.batch_size",
    "1024",
    "--model.embedding_l2",
    "0.001",
    "--model.optimizer.lr",
    "0.005",
    "--model.optimizer.weight_decay",
    "0.01",
    "--checkpoint.monitor",
    "val/ndcg@10",
    "--checkpoint.mode",
    "max",
    "--trainer.max_epochs",
    "20",
    "--model.finetune.freeze_epochs",
    "18",
]
# name -> (config, overrides, fit first)
RATING_RUNS = {
    "autorec (ID only)": (RATING, [], True),
    "biased MF (ID only)": (MF, [], True),
    "text tower, frozen MiniLM": (TEXT, ["--model.finetune.freeze_epochs", "12"], True),
    "text tower, frozen MiniLM, no ID embeddings": (
        TEXT,
        ["--model.finetune.freeze_epochs", "12", "--model.net_kwargs", "{hybrid: false}"],
        True,
    ),
    "text tower, fine-tuned MiniLM": (TEXT, [], True),
}
COLD20 = ["--model.cold_threshold", "20"]
RANKING_RUNS = {
    "popularity": (RANKING, ["--model.net", "popularity", *COLD20], False),
    "MF, BPR (ID only)": (RANKING, ["--model.net", "mf", "--model.loss", "bpr", *COLD20], True),
    "NeuMF, BCE (ID only)": (RANKING, COLD20, True),
    "text tower, frozen MiniLM": (TEXT, [*TEXT_RANKING, *COLD20, "--model.finetune.freeze_epochs", "20"], True),
    "text tower, frozen MiniLM, no ID embeddings": (
        TEXT,
        [*TEXT_RANKING, *COLD20, "--model.finetune.freeze_epochs", "20", "--model.net_kwargs", "{hybrid: false}"],
        True,
    ),
    "text tower, fine-tuned MiniLM": (TEXT, [*TEXT_RANKING, *COLD20], True),
}


def _run(
    config: str, root: Path, extra: list[str], fit: bool, also: list[str] | None = None
) -> tuple[dict[str, float], float]:
    """Fit (unless ``fit`` is False), then test the best checkpoint; ``also``: overrides of a second test
    of the same checkpoint (not counted in the wall time)."""
    common = ["--config", config, "--trainer.default_root_dir", str(root), *QUIET, *extra]
    ckpt = ["--ckpt_path", "best"] if fit else []
    start = time.perf_counter()
    if fit and main(["fit", *common]) != 0:
        raise SystemExit(f"fit failed: {config} {extra}")
    if main(["test", *common, *ckpt]) != 0:
        raise SystemExit(f"test failed: {config} {extra}")
    wall = time.perf_counter() - start
    if also is not None and main(["test", *common, *also, *ckpt]) != 0:
        raise SystemExit(f"test failed: {config} {extra} {also}")
    m = logged_metrics(root)
    if fit:  # which epoch the tested checkpoint is from (0-based), e.g. before or after the encoder was unfrozen
        m["best_epoch"] = float(
            Path(best_checkpoint(str(root / "checkpoints"))).name.split("-")[0].removeprefix("epoch=")
        )
    return m, wall


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="*", default=[""], help="run only the runs whose name contains one of these strings"
    )
    only = parser.parse_args().only
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder comes from the installed package, never the hub
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n, (name, (config, extra, fit)) in enumerate(RATING_RUNS.items()):
            if any(o in name for o in only):
                m, wall = _run(config, Path(tmp) / f"rating{n}", extra, fit)
                rows.append(
                    [
                        name,
                        f"{int(m['epoch']) + 1} ({int(m['best_epoch'])})",
                        f"{m['test/rmse']:.4f}",
                        f"{m['test/rmse_cold']:.4f}",
                        f"{m['test/mae']:.4f}",
                        f"{wall:.0f}",
                    ]
                )
        print_table(
            "MovieLens 100K rating, seeded random 80/10/10, test of the best checkpoint; "
            "cold: items with <= 5 training ratings (160 test ratings)",
            ["model", "epochs (best, 0-based)", "test RMSE", "cold RMSE", "test MAE", "fit + test wall s"],
            rows,
        )
        rows = []
        for n, (name, (config, extra, fit)) in enumerate(RANKING_RUNS.items()):
            if any(o in name for o in only):
                m, wall = _run(
                    config, Path(tmp) / f"ranking{n}", extra, fit, also=["--data.eval_protocol", "sampled100"]
                )
                epochs = f"{int(m['epoch']) + 1} ({int(m['best_epoch'])})" if fit else "0"
                rows.append(
                    [
                        name,
                        epochs,
                        f"{m['test/hr@10']:.4f}",
                        f"{m['test/ndcg@10']:.4f}",
                        f"{m['test/hr@10_cold']:.4f}",
                        f"{m['test/ndcg@10_cold']:.4f}",
                        f"{m['test/hr@10_sampled100_cold']:.4f}",
                        f"{wall:.0f}",
                    ]
                )
        print_table(
            "MovieLens 100K top-10, leave-last-out, full ranking (test, 943 users); "
            "cold: held-out item with <= 20 training interactions (99 users)",
            [
                "model",
                "epochs (best, 0-based)",
                "HR@10",
                "NDCG@10",
                "cold HR@10",
                "cold NDCG@10",
                "cold HR@10, 100 sampled",
                "fit + test wall s",
            ],
            rows,
        )


if __name__ == "__main__":
    main_()
