"""Quality and time of the recommendation recipes on MovieLens 100K, fit then test, as a user runs them.

    python -m benchmarks.recommendation

Rating prediction: the default config (configs/recommendation.yaml, I-AutoRec) and biased MF (the same
config with MF's overrides) on the seeded random 80/10/10 split, test RMSE/MAE of the best checkpoint.
Ranking: leave-last-out, HR@10 and NDCG@10 by full ranking over every item the user has not interacted
with, for the popularity baseline (nothing to train), MF (BPR) and NeuMF (configs/recommendation_ranking.yaml).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import logged_metrics, print_table
from recipes.__main__ import main

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# The default rating config is AutoRec; configs/recommendation_mf.yaml is biased MF.
RATING_RUNS = {
    "autorec (default, AdamW)": ("configs/recommendation.yaml", []),
    "biased MF (AdamW)": ("configs/recommendation_mf.yaml", []),
}
RANKING_RUNS = {
    "popularity": ["--model.net", "popularity"],
    "MF (BPR)": ["--model.net", "mf", "--model.loss", "bpr"],
    "NeuMF (BCE)": [],
}


def _run(config: str, root: Path, extra: list[str], fit: bool = True) -> tuple[dict[str, float], float]:
    common = ["--config", config, "--trainer.default_root_dir", str(root), *QUIET, *extra]
    start = time.perf_counter()
    if fit and main(["fit", *common]) != 0:
        raise SystemExit(f"fit failed: {config} {extra}")
    if main(["test", *common, *(["--ckpt_path", "best"] if fit else [])]) != 0:
        raise SystemExit(f"test failed: {config} {extra}")
    return logged_metrics(root), time.perf_counter() - start


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, (config, extra) in RATING_RUNS.items():
            m, wall = _run(config, Path(tmp) / name.split()[0], extra)
            rows.append([name, int(m["epoch"]) + 1, f"{m['test/rmse']:.4f}", f"{m['test/mae']:.4f}", f"{wall:.0f}"])
        print_table(
            "MovieLens 100K rating prediction, seeded random 80/10/10, test of the best checkpoint",
            ["model", "epochs", "test RMSE", "test MAE", "fit + test wall s"],
            rows,
        )
        rows = []
        for name, extra in RANKING_RUNS.items():
            m, wall = _run(
                "configs/recommendation_ranking.yaml", Path(tmp) / name.split()[0], extra, fit=name != "popularity"
            )
            epochs = int(m["epoch"]) + 1 if "epoch" in m and name != "popularity" else 0
            rows.append([name, epochs, f"{m['test/hr@10']:.4f}", f"{m['test/ndcg@10']:.4f}", f"{wall:.0f}"])
        print_table(
            "MovieLens 100K top-10 ranking, leave-last-out, full ranking over unrated items (test)",
            ["model", "epochs", "HR@10", "NDCG@10", "fit + test wall s"],
            rows,
        )


if __name__ == "__main__":
    main_()
