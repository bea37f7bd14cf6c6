"""Quality and time: the default image recipe against the previous default, side by side, as a user runs them.

    python -m benchmarks.fashion_mnist                       # both configs, seeds 0 1 2 (about 25 minutes)
    python -m benchmarks.fashion_mnist --seeds 0 --configs configs/image_classification.yaml [overrides ...]

Each run is ``recipes fit`` then ``recipes test --ckpt_path best`` in fresh processes, timed from outside. The
previous default (``benchmarks/baselines/image_classification_v1.yaml``, not shipped) is the yardstick: the
table gives each config's test accuracy per seed and their median, the median fit wall time, and the ratio of
fit times (new / old). Runs alternate old, new, old, new..., so drift of the machine's speed hits both alike.
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

BASELINE = "benchmarks/baselines/image_classification_v1.yaml"
DEFAULT = "configs/image_classification.yaml"


def fit_and_test(config: str, seed: int, overrides: list[str]) -> tuple[float, float, int]:
    """(test accuracy of the best checkpoint, fit wall seconds, epochs) of one seeded run."""
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--config", config, "--seed_everything", str(seed), "--trainer.default_root_dir", tmp]
        common += ["--trainer.enable_progress_bar", "false", *overrides]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recipes", "fit", *common], check=True, capture_output=True)
        fit = time.perf_counter() - start
        subprocess.run(
            [sys.executable, "-m", "recipes", "test", *common, "--ckpt_path", "best"], check=True, capture_output=True
        )
        m = logged_metrics(Path(tmp))
    return m["test/acc"], fit, int(m["epoch"]) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=[BASELINE, DEFAULT])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args, overrides = parser.parse_known_args()
    results: dict[str, list[tuple[float, float, int]]] = {c: [] for c in args.configs}
    for seed in args.seeds:
        for config in args.configs:
            results[config].append(fit_and_test(config, seed, overrides))
    base = statistics.median(fit for _, fit, _ in results[args.configs[0]])
    rows = []
    for config, runs in results.items():
        accs, fits = [a for a, _, _ in runs], [f for _, f, _ in runs]
        rows.append(
            [
                config + (" " + " ".join(overrides) if overrides else ""),
                runs[0][2],
                " ".join(f"{a:.4f}" for a in accs),
                f"{statistics.median(accs):.4f}",
                f"{statistics.median(fits):.0f}",
                f"{statistics.median(fits) / base:.2f}",
            ]
        )
    print_table(
        f"Fashion-MNIST: fit, then test of the best checkpoint (seeds {' '.join(map(str, args.seeds))})",
        ["config", "epochs", "test acc per seed", "median test acc", "median fit wall s", "fit time vs first"],
        rows,
    )


if __name__ == "__main__":
    main()
