"""Quality and time: the default image recipe on Fashion-MNIST, fit then test, as a user runs it.

    python -m benchmarks.fashion_mnist [--config configs/image_classification.yaml] [overrides ...]

Prints epochs, best validation accuracy, test accuracy of the best checkpoint and wall times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import logged_metrics, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/image_classification.yaml")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        common = [
            "--config",
            args.config,
            "--trainer.default_root_dir",
            tmp,
            "--trainer.enable_progress_bar",
            "false",
            *overrides,
        ]
        times = {}
        for stage, extra in (("fit", []), ("test", ["--ckpt_path", "best"])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "recipes", stage, *common, *extra], check=True, capture_output=True)
            times[stage] = time.perf_counter() - start
        m = logged_metrics(Path(tmp), keep_max=("val/acc", "epoch"))
    rows = [
        [
            args.config + (" " + " ".join(overrides) if overrides else ""),
            int(m["epoch"]) + 1,
            f"{m['val/acc']:.4f}",
            f"{m['test/acc']:.4f}",
            f"{times['fit']:.0f}",
            f"{times['test']:.0f}",
        ]
    ]
    print_table(
        "Fashion-MNIST, fit then test of the best checkpoint",
        ["config", "epochs", "best val acc", "test acc", "fit wall s", "test wall s"],
        rows,
    )


if __name__ == "__main__":
    main()
