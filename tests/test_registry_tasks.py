"""Every registered optimizer, with the factory's defaults, on each task's model: a few real optimizer steps
through Lightning on real batches, a finite loss, and weights that moved. A name that cannot work is marked in
the registry with its reason, and choosing it is one error at parse time.

Parametrized over the registry itself, so a newly registered name is covered without anyone adding it here.
The models are the configs' own networks (the speech CRNN at a reduced width); three real
batches of each task's data are read once and replayed for every optimizer.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from recipes.__main__ import main
from recipes.cli import build_cli
from recipes.commands import _rows as list_rows
from recipes.modules.errors import RecipeError
from recipes.modules.optim import OptimizerConfig, list_optimizers
from tests.conftest import CONFIGS

TASKS = {
    "image": ["--config", str(CONFIGS / "image_classification.yaml"), "--data.batch_size", "32"],
    "recommendation": ["--config", str(CONFIGS / "recommendation.yaml"), "--data.batch_size", "64"],
    "speech": [
        "--config",
        str(CONFIGS / "speech_recognition.yaml"),
        "--data.include",
        '["digits/*"]',
        "--data.batch_size",
        "4",
        "--model.net_kwargs",
        "{dim: 32, hidden: 32, layers: 1}",
    ],
    "regression": ["--config", str(CONFIGS / "regression.yaml")],
}
INFO = {i.name: i for i in list_optimizers()}
USABLE = [i.name for i in list_optimizers() if not i.unusable]
MARKED = [i.name for i in list_optimizers() if i.unusable]
# Cells where a name cannot step a task's model, with the one clear error it stops with instead, found from
# the registry's own flags; each is checked, so a fix shows up here as a failing cell.
EXPECTED: dict[tuple[str, str], str] = {
    **{(n, t): "takes sparse gradients only" for n, i in INFO.items() if i.sparse_only for t in TASKS},
    # (not on the regression Linear: it is all output head, so a matrices-only optimizer gets none of it)
    **{
        (n, t): "splits its work over"
        for n, i in INFO.items()
        if i.distributed_only
        for t in TASKS
        if t != "regression"
    },
    # CTC's loss has no second derivative (torch: "derivative for aten::_ctc_loss_backward is not implemented")
    **{(n, "speech"): "needs second derivatives" for n, i in INFO.items() if i.create_graph},
    # the image recipe's conv weights are channels-last (model.channels_last)
    **{(n, "image"): "channels-last" for n, i in INFO.items() if i.contiguous_only},
}
# SaRA updates only the weights whose initial magnitude is below its threshold (1e-3): the regression
# Linear's 33 have none, so it trains nothing there (its design: fine-tuning the small weights of a
# pretrained model).
UNMOVED = {("sara", "regression")}
STEPS = 3  # real batches, replayed; an optimizer that first moves the weights later takes that many steps


class Replay(L.LightningDataModule):
    """A task's datamodule whose training loader replays a few cached real batches (its transfer hooks and
    everything else are the datamodule's own)."""

    def __init__(self, dm: L.LightningDataModule, batches: list) -> None:
        super().__init__()
        self.dm, self.batches = dm, batches

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("dm", "batches"):
            raise AttributeError(name)
        return getattr(self.__dict__["dm"], name)

    def setup(self, stage: str) -> None:
        pass

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        return self.dm.on_before_batch_transfer(batch, dataloader_idx)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        return self.dm.transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return self.dm.on_after_batch_transfer(batch, dataloader_idx)


_BUILT: dict[str, tuple[L.LightningModule, Replay]] = {}


def _task(task: str, tmp_path_factory) -> tuple[L.LightningModule, Replay]:
    if task not in _BUILT:
        root = tmp_path_factory.mktemp(task)
        cli = build_cli([*TASKS[task], "--trainer.default_root_dir", str(root)], run=False)
        dm = cli.datamodule
        dm.prepare_data()
        dm.setup("fit")
        batches = iter(dm.train_dataloader())
        _BUILT[task] = (cli.model, Replay(dm, [next(batches) for _ in range(STEPS)]))
    return _BUILT[task]


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("name", USABLE)
def test_every_listed_optimizer_steps_every_task_model(name, task, tmp_path_factory):
    pristine, data = _task(task, tmp_path_factory)
    module = copy.deepcopy(pristine)
    info = INFO[name]
    # a closure step evaluates the loss many times; a late first update is not at the schedule's last, zero lr
    steps = 1 if info.closure else max(STEPS, info.first_update + 2)
    module.optimizer_config = OptimizerConfig(name=name)  # the factory's defaults: lr 1e-3, weight decay unset
    before = [p.detach().clone() for p in module.parameters()]
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path_factory.mktemp("fit"),
    )
    if (name, task) in EXPECTED:
        with pytest.raises(RecipeError, match=EXPECTED[name, task]):
            trainer.fit(module, datamodule=data)
        return
    trainer.fit(module, datamodule=data)  # FiniteLossGuard raises on a NaN or infinite loss
    assert trainer.global_step == steps
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    moved = any(not torch.equal(a, b.detach()) for a, b in zip(before, module.parameters()))
    assert moved != ((name, task) in UNMOVED)


@pytest.mark.parametrize("name", MARKED)
def test_a_marked_optimizer_is_one_error_at_parse_time_and_listed_with_its_reason(name):
    info = next(i for i in list_optimizers() if i.name == name)
    with pytest.raises(RecipeError, match=f"optimizer '{name}' cannot be used here: "):
        OptimizerConfig(name=name)
    assert main(["fit", *TASKS["regression"], "--model.optimizer.name", name]) == 2  # before any training
    assert f"NOT USABLE: {info.unusable}" in dict(list_rows("optimizers"))[name]


def test_the_tally_covers_the_whole_registry():
    assert len(USABLE) + len(MARKED) == len(list_optimizers()) > 130
    assert len(MARKED) < 15  # most names work; each mark is a reason, not an escape hatch
