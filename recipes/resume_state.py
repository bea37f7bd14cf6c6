"""What Lightning does not put back when a fit resumes: random-number generators and the place in the epoch.

Lightning restores weights, optimizer, schedule and loop counters. Two things it leaves out:

* the generators that dropout, augmentation and SpecAugment draw from: this callback stores torch's
  (CPU and CUDA), numpy's and Python's states of every rank in each checkpoint;
* the states of the module's torchmetrics objects (not in ``state_dict``): a metric logged for the
  epoch, such as ``train/acc``, would otherwise count only the batches after the resume;
* the training loaders' positions: Lightning stores the ``state_dict`` of a stateful loader
  (``recipes.data.batching.ResumableLoader``) but loads it only when it builds the loader after restoring, and a
  module whose ``configure_optimizers`` asks for ``trainer.estimated_stepping_batches`` (every recipe: the
  schedule needs the total) has it built before. The states are applied here instead; the loader's
  iterator has not drawn a batch yet at that point, so the first resumed step gets the next batch.

All are applied in ``on_train_start``, just before the first resumed step. Each rank stores its own.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.fabric.utilities.types import _Stateful
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import CombinedLoader
from torchmetrics import Metric

from recipes.modules.errors import ConfigError

__all__ = ["ResumeState"]


def collect_states(cuda: bool) -> dict[str, Any]:
    """This process's generator states as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if cuda:
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_states(states: dict[str, Any], cuda: bool) -> None:
    """Put back what ``collect_states`` took."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if cuda and states.get("torch.cuda"):
        torch.cuda.set_rng_state_all(states["torch.cuda"])


def _mid_epoch(trainer: L.Trainer) -> bool:
    """A save inside a training epoch (after a step or a mid-epoch validation): its training metrics are partial
    sums that the resumed epoch goes on adding to. At an epoch's end Lightning resets them after the save."""
    return (
        trainer.state.fn == "fit"
        and not trainer.sanity_checking
        and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
    )


def metric_states(module: torch.nn.Module) -> dict[str, dict[str, Any]]:
    """The accumulated state of each training-stage torchmetrics object (``train_*``, the recipes' naming: one
    object per stage) under ``module``, by module name, on the CPU. Validation and test objects are reset by
    Lightning after every evaluation, so what a checkpoint holds of them is stale."""
    out = {}
    for name, metric in module.named_modules():
        if isinstance(metric, Metric) and name.rsplit(".", 1)[-1].startswith("train"):
            state = {key: getattr(metric, key) for key in metric._defaults}
            state = {k: [t.cpu() for t in v] if isinstance(v, list) else v.cpu() for k, v in state.items()}
            out[name] = {"state": state, "updates": metric._update_count}
    return out


def load_metric_states(module: torch.nn.Module, saved: dict[str, dict[str, Any]]) -> None:
    """Put back what ``metric_states`` took (on the module's device)."""
    for name, metric in module.named_modules():
        if isinstance(metric, Metric) and name in saved:
            for key, value in saved[name]["state"].items():
                device = metric.device
                setattr(metric, key, [t.to(device) for t in value] if isinstance(value, list) else value.to(device))
            metric._update_count = saved[name]["updates"]
            metric._computed = None


class ResumeState(Callback):
    """Saves each rank's RNG states in the checkpoint and restores them, and the loaders' positions, on resume."""

    def __init__(self) -> None:
        self._to_restore: list[dict[str, Any]] | None = None
        self._loader_states: list[dict[str, Any]] = []
        self._module: L.LightningModule | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._module = pl_module

    def state_dict(self) -> dict[str, Any]:
        states = collect_states(cuda=torch.cuda.is_available() and torch.cuda.is_initialized())
        states["metrics"] = (
            metric_states(self._module) if self._module is not None and _mid_epoch(self._module.trainer) else {}
        )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)  # every rank dumps the checkpoint; rank 0 writes it
            return {"ranks": gathered}
        return {"ranks": [states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict.get("ranks")

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._loader_states = list(fit_loop.get("state_dict", {}).get("combined_loader", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._loader_states:
            loaders = [dl for dl in CombinedLoader(trainer.train_dataloader).flattened if isinstance(dl, _Stateful)]
            if len(loaders) != len(self._loader_states):
                raise ConfigError(
                    f"the checkpoint holds the positions of {len(self._loader_states)} training loaders, "
                    f"this run has {len(loaders)}",
                    "resume with the data settings the checkpoint was trained with",
                )
            for loader, state in zip(loaders, self._loader_states):
                loader.load_state_dict(state)
            self._loader_states = []
        if self._to_restore:
            states = self._to_restore[trainer.global_rank % len(self._to_restore)]
            restore_states(states, cuda=trainer.strategy.root_device.type == "cuda")
            load_metric_states(pl_module, states.get("metrics", {}))
            self._to_restore = None
