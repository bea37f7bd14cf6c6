"""One benchmark run in its own process: ``python -m recipes.benchmark.worker RUN.json RECORD.json``.

Lightning's ``ddp`` strategy starts the other ranks by re-running the command that started the first, so
one process can hold only one multi-device ``fit``. For suites on several devices (or with
``isolate: true``) the benchmark starts this worker once per run; every rank trains, rank zero writes the
record.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from recipes.benchmark.runner import train_run
from recipes.benchmark.suite import Run
from recipes.modules.errors import RecipeError


def _load_run(path: str) -> tuple[Run, bool]:
    spec = json.loads(Path(path).read_text())
    return Run.from_dict(spec["run"]), spec["stop_at_target"]


def main(argv: list[str]) -> int:
    run, stop = _load_run(argv[0])
    torch.set_float32_matmul_precision("high")
    try:
        rec = train_run(run, stop)
    except RecipeError as exc:  # the user's mistake: the driver raises it as one line
        rec = {"recipe_error": str(exc), "rank_zero": int(os.environ.get("RANK", "0")) == 0}
    if rec["rank_zero"]:
        out = Path(argv[1])
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(fd, "w") as fh:
            json.dump(rec, fh, allow_nan=True)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
