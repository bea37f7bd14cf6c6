"""Quality and time: the default speech recipe on the Asterisk prompts against the previous default.

    python -m benchmarks.speech                              # the previous default's epoch time, the default's fit
    python -m benchmarks.speech --baseline_epochs 0 --config configs/speech_recognition.yaml [overrides ...]

The previous default (``benchmarks/baselines/speech_recognition_v1.yaml``, not shipped) ran 90 epochs for
about 35 minutes; a full fit of it is not repeated each time. It is fitted for 1 and for 1 + ``baseline_epochs``
epochs in fresh processes, side by side with the new default on the same machine, and its 90-epoch fit time is
projected from those: the one-epoch run's wall (start-up included) plus 89 times the per-epoch difference.
The config under test is fitted in full, then its best checkpoint is evaluated on the held-out test split and
on the training split (real recordings only, no augmentation); the table gives epochs, wall times, CER and WER.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import logged_metrics, print_table

BASELINE = "benchmarks/baselines/speech_recognition_v1.yaml"
QUIET = ["--trainer.enable_progress_bar", "false"]


def _run(stage: str, common: list[str], *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recipes", stage, *common, *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def projected_fit(config: str, epochs: int) -> tuple[float, float, int]:
    """(per-epoch seconds, projected full-fit seconds, the config's max_epochs) of ``config``."""
    full = yaml.safe_load(open(config))["trainer"]["max_epochs"]
    walls = []
    for n in (1, 1 + epochs):
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--config", config, "--trainer.default_root_dir", tmp, *QUIET]
            walls.append(_run("fit", common, "--trainer.max_epochs", str(n)))
    per_epoch = (walls[1] - walls[0]) / epochs
    return per_epoch, walls[0] + (full - 1) * per_epoch, full


def fit_and_test(config: str, overrides: list[str], root: Path) -> list[object]:
    common = ["--config", config, "--trainer.default_root_dir", str(root), *QUIET, *overrides]
    fit_s = _run("fit", common)
    epochs = int(logged_metrics(root)["epoch"]) + 1
    _run("test", common, "--ckpt_path", "best", "--data.test_split", "train")
    train = logged_metrics(root)
    test_s = _run("test", common, "--ckpt_path", "best")
    test = logged_metrics(root)
    return [
        epochs,
        f"{fit_s:.0f}",
        f"{train['test/cer']:.3f}",
        f"{train['test/wer']:.3f}",
        f"{test['test/cer']:.3f}",
        f"{test['test/wer']:.3f}",
        f"{test_s:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/speech_recognition.yaml")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--baseline_epochs", type=int, default=2, help="epochs timed of the baseline; 0: skip it")
    parser.add_argument("--root", default=None, help="keep the run here instead of a temporary folder")
    args, overrides = parser.parse_known_args()
    rows = []
    if args.baseline_epochs:
        per_epoch, projected, full = projected_fit(args.baseline, args.baseline_epochs)
        rows.append([f"{args.baseline} (projected from {per_epoch:.1f} s an epoch)", full, f"{projected:.0f}"])
        rows[-1] += ["-"] * 5
    with tempfile.TemporaryDirectory() as tmp:
        row = fit_and_test(args.config, overrides, Path(args.root or tmp))
    rows.append([args.config + (" " + " ".join(overrides) if overrides else ""), *row])
    if args.baseline_epochs:
        rows[-1].append(f"{float(row[1]) / projected:.2f}")
        rows[0].append("1.00")
    header = ["config", "epochs", "fit wall s", "train CER", "train WER", "test CER", "test WER", "test wall s"]
    header += ["fit time vs baseline"] if args.baseline_epochs else []
    print_table("Asterisk prompts, best checkpoint on the train and held-out test splits", header, rows)


if __name__ == "__main__":
    main()
