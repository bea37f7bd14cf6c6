"""Writes what ``predict_step`` returns to a CSV file, atomically (a crash leaves no half-written file)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["CSVPredictionWriter", "NamedPredictions", "atomic_write_csv"]


@runtime_checkable
class NamedPredictions(Protocol):
    """A datamodule whose predictions hold positions that stand for names (files, the data's own ids)."""

    def prediction_names(self) -> dict[str, Sequence[Any]]:
        """Column -> names: the writer writes ``names[v]`` for each value ``v`` of that column."""


def atomic_write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write ``rows`` under ``header`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _column(values: Any) -> list[Any]:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().tolist()
    return list(values)


ORDER_KEYS = ("index", "_row")  # a row's position in the data; ``_row`` orders the rows and is not written


def _gather(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Every rank's columns, concatenated (rank 0 first)."""
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, columns)
    keys = next((list(part) for part in parts if part), [])
    return {key: [v for part in parts if part for v in part[key]] for key in keys}


def _in_data_order(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Rows sorted by their position in the data (batches may come length-sorted or from several processes)."""
    key = next((k for k in ORDER_KEYS if k in columns), None)
    if key is None:
        return columns
    order = sorted(range(len(columns[key])), key=columns[key].__getitem__)  # stable: a user's top-k keeps its ranks
    return {name: [values[i] for i in order] for name, values in columns.items()}


class CSVPredictionWriter(BasePredictionWriter):
    """Collects the dicts of columns ``predict_step`` returns and writes one CSV when predict ends.

    Columns the datamodule names (``NamedPredictions``: file paths for ``index``, which is written first as
    ``id``; the data's own user and item ids) are written as those names. Under DDP each process predicts its
    share; rank 0 gathers them into the one file. Rows are written in the data's order (``index`` or ``_row``).

    Args:
        output: the CSV path; None writes ``predictions.csv`` in the trainer's ``default_root_dir``.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = output

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions, batch_indices) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        batches = [b for b in batches or [] if b]
        columns: dict[str, list[Any]] = {key: [] for key in batches[0]} if batches else {}
        for batch in batches:
            for key, values in batch.items():
                columns[key].extend(_column(values))
        if trainer.world_size > 1:  # one file: every process's rows (every rank gathers, even one with no rows)
            columns = _gather(columns)
            if not trainer.is_global_zero:
                return
        if not columns:
            return
        columns = _in_data_order(columns)
        columns.pop("_row", None)
        data = trainer.datamodule
        named = data.prediction_names() if isinstance(data, NamedPredictions) else {}
        for key, names in named.items():
            if key in columns:
                columns[key] = [names[i] for i in columns[key]]
        if "index" in named and "index" in columns:
            columns = {"id": columns.pop("index"), **columns}
        path = Path(self.output or Path(trainer.default_root_dir) / "predictions.csv")
        atomic_write_csv(path, list(columns), [list(row) for row in zip(*columns.values())])
        rank_zero_info(f"wrote {len(next(iter(columns.values())))} predictions to {path}")
