"""Schedules: warmup peaks, cosine reaches the minimum at the last step, and steps match the Trainer's."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from recipes.data.image.datamodule import DigitsDataModule
from recipes.modules.errors import RecipeError
from recipes.modules.image.classifier import ImageClassifier
from recipes.modules.optim import OptimizerConfig, SchedulerConfig, build_scheduler, lr_multiplier


def _curve(name: str, total: int = 100, warmup: int = 10, min_ratio: float = 0.1, **kw) -> list[float]:
    return [lr_multiplier(s, name=name, total=total, warmup=warmup, min_ratio=min_ratio, **kw) for s in range(total)]


@pytest.mark.parametrize("name", ["cosine", "linear", "constant", "inverse_sqrt", "wsd"])
def test_warmup_is_linear_and_ends_at_peak(name):
    c = _curve(name)
    assert c[0] == pytest.approx(0.1) and c[4] == pytest.approx(0.5)
    assert c[9] == pytest.approx(1.0) and max(c) == pytest.approx(1.0)


def test_decay_shapes_end_exactly_at_min():
    cos, lin, wsd = _curve("cosine"), _curve("linear"), _curve("wsd", decay_fraction=0.2)
    assert cos[-1] == pytest.approx(0.1) and lin[-1] == pytest.approx(0.1) and wsd[-1] == pytest.approx(0.1)
    mid = 10 + (99 - 10) / 2
    assert lr_multiplier(int(mid), name="cosine", total=100, warmup=10, min_ratio=0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * (int(mid) - 10) / 89))
    )
    assert all(x == 1.0 for x in wsd[10:80]) and wsd[80] < 1.0
    assert _curve("inverse_sqrt", min_ratio=0.0)[39] == pytest.approx(math.sqrt(10 / 40))
    assert all(a >= b for a, b in zip(cos[9:], cos[10:]))


def test_scheduler_applies_per_group_scale():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 0.1}])
    sched = build_scheduler(opt, SchedulerConfig(name="linear", warmup_steps=2), total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert lrs[1] == pytest.approx([1.0, 0.1]) and lrs[-1] == pytest.approx([0.0, 0.0])


def test_bad_schedule_settings():
    with pytest.raises(RecipeError, match="unknown schedule"):
        SchedulerConfig(name="cosin")
    with pytest.raises(RecipeError, match="both warmup_steps and warmup_fraction"):
        SchedulerConfig(warmup_steps=3, warmup_fraction=0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(RecipeError, match="not shorter than the run"):
        build_scheduler(opt, SchedulerConfig(warmup_steps=10), total_steps=10)


class _RecordLR(L.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("accumulate", [1, 3])
def test_schedule_length_matches_trainer(tmp_path, accumulate):
    dm = DigitsDataModule(batch_size=64)
    model = ImageClassifier(
        net="cnn",
        net_kwargs={"widths": [8]},
        image_size=8,
        optimizer=OptimizerConfig(lr=0.01),
        scheduler=SchedulerConfig(name="cosine", warmup_steps=3, min_lr_ratio=0.05),
    )
    rec = _RecordLR()
    trainer = L.Trainer(
        max_epochs=2,
        accumulate_grad_batches=accumulate,
        callbacks=[rec],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, dm)
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.last_epoch == trainer.global_step == trainer.estimated_stepping_batches
    # The lr in force at the last optimizer step is the minimum; the first warmup step is 1/3 of the peak.
    opt_step_lrs = rec.lrs[::accumulate]
    assert opt_step_lrs[0] == pytest.approx(0.01 / 3)
    assert opt_step_lrs[2] == pytest.approx(0.01)
    assert opt_step_lrs[-1] == pytest.approx(0.01 * 0.05)
