"""``model.compile`` off and on: steady-state training step time, compile time and the whole fit, side by side.

    python -m benchmarks.compile                    # the image and speech defaults, 2 epochs each way
    python -m benchmarks.compile --epochs 3 --tasks image

Each run is a fresh process fitting the shipped config for ``--epochs`` epochs without validation. A callback
times every optimizer step: the steady step is the median of the last epoch's steps; the compile time is what the
first steps cost above that (each first step of a new input shape compiles, so ``dynamic`` shapes matter for
speech's varying lengths); total is the whole fit, set-up included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import print_table

CONFIGS = {"image": "configs/image_classification.yaml", "speech": "configs/speech_recognition.yaml"}
SETTINGS = {"off": "false", "on": "true", "on, dynamic": "{dynamic: true}"}


def child(config: str, epochs: str, compile_setting: str) -> dict:
    import lightning as L

    from recipes.cli import build_cli

    class Steps(L.Callback):
        def __init__(self) -> None:
            self.times: list[list[float]] = []

        def on_train_epoch_start(self, *_):
            self.times.append([])

        def on_train_batch_start(self, *_):
            self.start = time.perf_counter()

        def on_train_batch_end(self, *_):
            self.times[-1].append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--config", config, "--trainer.max_epochs", epochs, "--trainer.default_root_dir", tmp]
        args += ["--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false"]
        args += ["--trainer.enable_checkpointing", "false", "--model.compile", compile_setting]
        start = time.perf_counter()
        cli = build_cli(args, run=False)
        steps = Steps()
        cli.trainer.callbacks.append(steps)
        cli.trainer.fit(cli.model, cli.datamodule)
        total = time.perf_counter() - start
    steady = statistics.median(steps.times[-1])
    every = [t for epoch in steps.times for t in epoch]
    return {
        "steady_ms": steady * 1e3,
        "compile_s": sum(t - steady for t in every if t > 3 * steady),
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    rows = []
    for task in args.tasks:
        base = None
        for label, setting in SETTINGS.items():
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.compile", "--child", CONFIGS[task], args.epochs, setting],
                capture_output=True,
                text=True,
            )
            if out.returncode:  # a failure is a result: its last error line goes in the table
                errors = [line for line in out.stderr.splitlines() if "Error" in line] or ["exit status"]
                rows.append([f"{task} ({CONFIGS[task]})", label, f"fails: {errors[-1].strip()[:90]}", "", "", ""])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r
            rows.append(
                [
                    f"{task} ({CONFIGS[task]})",
                    label,
                    f"{r['steady_ms']:.1f}",
                    f"{r['compile_s']:.1f}",
                    f"{r['total_s']:.0f}",
                    f"{r['total_s'] / base['total_s']:.2f}",
                ]
            )
    print_table(
        f"torch.compile (TorchInductor, CPU): {args.epochs} training epochs of each default, no validation",
        ["task", "model.compile", "steady step ms", "compile s", "fit s", "fit vs off"],
        rows,
    )


if __name__ == "__main__":
    main()
