"""Small helpers shared by the benchmark scripts: timing and a printed Markdown table."""

from __future__ import annotations

import csv
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print a Markdown table (pasteable into the README) with the machine it ran on."""
    print(f"\n### {title}\n")
    print(
        f"_{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}_\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")


def logged_metrics(root: Path, keep_max: tuple[str, ...] = ("epoch",)) -> dict[str, float]:
    """Every metric in ``root``'s CSV logs, oldest version first: the last value of each, except the
    keys in ``keep_max`` (the test run logs epoch 0 in its own version; keep the fit's largest)."""
    out: dict[str, float] = {}
    for path in sorted(root.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])):
        for row in csv.DictReader(open(path)):
            for k, v in row.items():
                if v:
                    out[k] = max(out.get(k, 0.0), float(v)) if k in keep_max else float(v)
    return out
