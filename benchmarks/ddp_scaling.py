"""Data-parallel scaling per task: samples/s and step time on 1 process and on N DDP processes.

    python -m benchmarks.ddp_scaling [--accelerator cpu|gpu] [--devices 2] [--steps 30] [--configs NAME ...]

Each run is an ordinary ``python -m recipes fit`` of the task's config (``--trainer.strategy ddp``, Lightning's
own launcher, gloo on CPU, NCCL on CUDA), the per-process batch as configured (so N processes train on an
N times larger global batch: weak scaling), validation off. A callback stamps every training-batch start;
the table gives the median step time after the first steps and samples/s = processes x batch / step time.
On a CPU the processes share its cores (Lightning gives each ``cores / processes`` threads), so a ratio
near 1 means DDP costs little, not that it helps; the ratio that matters is on one GPU per process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("image_classification", "recommendation", "recommendation_ranking", "speech_recognition")


class StepClock(L.Callback):
    """Writes rank 0's training-batch start times and batch sizes to ``out`` (JSON) when fitting ends."""

    def __init__(self, out: str) -> None:
        self.out, self.stamps, self.sizes = out, [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stamps.append(time.perf_counter())
        first = batch[0] if isinstance(batch, (list, tuple)) else next(iter(batch.values()))
        self.sizes.append(len(first))

    def on_train_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            Path(self.out).write_text(
                json.dumps({"stamps": self.stamps, "sizes": self.sizes, "world": trainer.world_size})
            )


def measure(config: str, devices: int, accelerator: str, steps: int, warmup: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clock.json"
        cmd = [
            sys.executable,
            "-m",
            "recipes",
            "fit",
            "--config",
            str(ROOT / "configs" / f"{config}.yaml"),
            "--trainer.default_root_dir",
            tmp,
            "--trainer.accelerator",
            accelerator,
            "--trainer.devices",
            str(devices),
            "--trainer.max_epochs",
            "1000",
            "--trainer.max_steps",
            str(steps + warmup + 1),
            "--trainer.limit_val_batches",
            "0",
            "--trainer.num_sanity_val_steps",
            "0",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
            "--trainer.enable_checkpointing",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--trainer.callbacks+=benchmarks.ddp_scaling.StepClock",
            "--trainer.callbacks.out",
            str(out),
        ]
        if devices > 1:
            cmd += ["--trainer.strategy", "ddp"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{config} on {devices} process(es) failed:\n{proc.stderr[-3000:]}")
        clock = json.loads(out.read_text())
    gaps = [b - a for a, b in zip(clock["stamps"], clock["stamps"][1:])][warmup:]
    step = statistics.median(gaps)
    batch = statistics.median(clock["sizes"])
    return {"step_ms": step * 1e3, "samples_s": clock["world"] * batch / step, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--configs", nargs="*", default=list(TASKS), choices=list(TASKS))
    args = parser.parse_args()
    from benchmarks.common import print_table

    rows = []
    for config in args.configs:
        one = measure(config, 1, args.accelerator, args.steps, args.warmup)
        many = measure(config, args.devices, args.accelerator, args.steps, args.warmup)
        rows.append(
            [
                config,
                int(one["batch"]),
                one["step_ms"],
                f"{one['samples_s']:,.0f}",
                many["step_ms"],
                f"{many['samples_s']:,.0f}",
                many["samples_s"] / one["samples_s"],
            ]
        )
    print_table(
        f"DDP scaling on {args.accelerator}: 1 process vs {args.devices} (median over {args.steps} steps)",
        [
            "config",
            "batch/process",
            "1 proc ms/step",
            "1 proc samples/s",
            f"{args.devices} proc ms/step",
            f"{args.devices} proc samples/s",
            "ratio",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
