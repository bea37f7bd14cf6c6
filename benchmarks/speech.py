"""Quality and time: the default speech recipe on the Asterisk prompts, fit then test, as a user runs it.

    python -m benchmarks.speech [--config configs/speech_recognition.yaml] [overrides ...]

Fits, then evaluates the best checkpoint on the held-out test split and on the training split (real
recordings only, no augmentation), and prints epochs, wall times, CER and WER.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table


def _last(root: Path) -> dict[str, float]:
    """The last value of every metric in the newest CSV log (each stage writes a new version)."""
    newest = max(root.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    out: dict[str, float] = {}
    for row in csv.DictReader(open(newest)):
        out.update({k: float(v) for k, v in row.items() if v})
    return out


def _run(stage: str, common: list[str], *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recipes", stage, *common, *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/speech_recognition.yaml")
    parser.add_argument("--root", default=None, help="keep the run here instead of a temporary folder")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root or tmp)
        common = [
            "--config",
            args.config,
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            *overrides,
        ]
        fit_s = _run("fit", common)
        epochs = int(_last(root)["epoch"]) + 1
        _run("test", common, "--ckpt_path", "best", "--data.test_split", "train")
        train = _last(root)
        test_s = _run("test", common, "--ckpt_path", "best")
        test = _last(root)
    rows = [
        [
            args.config + (" " + " ".join(overrides) if overrides else ""),
            epochs,
            f"{fit_s:.0f}",
            f"{train['test/cer']:.3f}",
            f"{train['test/wer']:.3f}",
            f"{test['test/cer']:.3f}",
            f"{test['test/wer']:.3f}",
            f"{test_s:.0f}",
        ]
    ]
    header = ["config", "epochs", "fit wall s", "train CER", "train WER", "test CER", "test WER", "test wall s"]
    print_table("Asterisk prompts, best checkpoint on the train and held-out test splits", header, rows)


if __name__ == "__main__":
    main()
