"""Plain ``--trainer.strategy ddp`` with a model whose training steps leave parameters without a gradient (a
freeze schedule): the CLI picks DDP's find-unused-parameters variant and says so in one line, two CPU
processes fit without DDP's RuntimeError, and the parameters unfrozen after DDP wrapped the model are still
all-reduced (both ranks end with the same weights, and the backbone did train)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from recipes.modules.pretrained import FinetuneConfig
from recipes.strategy import ddp_strategy_for, skipped_parameters_reason
from tests.conftest import CONFIGS, QUIET, run_recipes
from tests.test_whisper_finetune import PROMPTS

LINE = "strategy ddp -> ddp_find_unused_parameters_true: "


class _Module(L.LightningModule):
    def __init__(self, finetune: FinetuneConfig = FinetuneConfig()) -> None:
        super().__init__()
        self.finetune_config = finetune
        self.net = nn.Linear(2, 2)


class RankWeights(L.Callback):
    """Writes every rank's weights when training starts and ends to ``out/rank<N>.pt`` (for the test below)."""

    def __init__(self, out: str) -> None:
        self.out, self.start = Path(out), {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {k: v.detach().clone() for k, v in pl_module.named_parameters()}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        end = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        trainable = [k for k, v in pl_module.named_parameters() if v.requires_grad]
        torch.save(
            {"start": self.start, "end": end, "trainable": trainable, "step": trainer.global_step},
            self.out / f"rank{trainer.global_rank}.pt",
        )


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("ddp", "ddp_find_unused_parameters_true"),
        ("ddp_spawn", "ddp_spawn_find_unused_parameters_true"),
        ("ddp_fork", "ddp_fork_find_unused_parameters_true"),
        ("ddp_notebook", "ddp_notebook_find_unused_parameters_true"),
        ("ddp_find_unused_parameters_false", "ddp_find_unused_parameters_false"),  # the user's explicit choice
        ("auto", "auto"),
        ("fsdp", "fsdp"),
    ],
)
def test_ddp_names_get_the_find_unused_variant_for_a_freeze_window(strategy, expected):
    assert ddp_strategy_for(_Module(FinetuneConfig(freeze_steps=3)), strategy) == expected
    assert ddp_strategy_for(_Module(), strategy) == strategy  # no window: nothing changes


def test_declarations_and_strategy_objects():
    obj = DDPStrategy()
    assert ddp_strategy_for(_Module(FinetuneConfig(freeze_epochs=1)), obj) is obj  # an object is the user's own
    assert skipped_parameters_reason(_Module(FinetuneConfig(freeze_epochs=2))) == (
        "model.finetune.freeze_epochs 2 freezes the backbone after DDP has wrapped the model"
    )
    declared = _Module()
    declared.may_skip_parameters = "the net samples a sub-network each step"
    assert skipped_parameters_reason(declared) == "the net samples a sub-network each step"
    assert ddp_strategy_for(declared, "ddp") == "ddp_find_unused_parameters_true"
    declared.may_skip_parameters = True
    assert skipped_parameters_reason(declared) == "_Module.may_skip_parameters is set"
    opted_out = _Module(FinetuneConfig(freeze_steps=5))
    opted_out.may_skip_parameters = False
    assert ddp_strategy_for(opted_out, "ddp") == "ddp"


def _fit_ddp(tmp_path: Path, *args: str) -> tuple[str, list[dict]]:
    cb = json.dumps([{"class_path": "tests.test_ddp_unused.RankWeights", "init_args": {"out": str(tmp_path)}}])
    out = run_recipes(
        "fit",
        *args,
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.callbacks",
        cb,
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.limit_val_batches",
        "0",
        timeout=240,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    return log, [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def _assert_in_sync_and_trained(ranks: list[dict], backbone: str, steps: int) -> None:
    r0, r1 = ranks
    assert r0["step"] == r1["step"] == steps
    assert r0["end"].keys() == r1["end"].keys()
    assert all(torch.equal(r0["end"][k], r1["end"][k]) for k in r0["end"]), "the ranks' weights diverged"
    assert all(torch.equal(r0["start"][k], r1["start"][k]) for k in r0["start"])
    unfrozen = [k for k in r0["trainable"] if k.startswith(backbone + ".")]
    assert unfrozen and all(not torch.equal(r0["start"][k], r0["end"][k]) for k in unfrozen), (
        "the unfrozen backbone did not train"
    )


def test_freeze_schedule_under_plain_ddp_keeps_ranks_in_sync(tmp_path):
    """The digits CNN with the freeze schedule of configs/image_finetune_mnist5k.yaml: 2 frozen steps, 3 trained."""
    log, ranks = _fit_ddp(
        tmp_path,
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--model.finetune.freeze_steps",
        "2",
        "--trainer.max_steps",
        "5",
        "--model.scheduler.warmup_steps",
        "1",
    )
    assert log.count(LINE) == 1 and "model.finetune.freeze_steps 2 freezes the backbone" in log
    assert (
        "froze 6 tensors under net.features" in log and "unfroze 6 tensors under net.features at epoch 0, step 2" in log
    )
    _assert_in_sync_and_trained(ranks, "net.features", 5)


def _unfrozen_count(ranks: list[dict], backbone: str) -> int:
    """How many tensors under ``backbone`` trained at the end: what the unfreeze line must report."""
    return sum(k.startswith(backbone + ".") for k in ranks[0]["trainable"])


def test_text_tower_freeze_schedule_under_plain_ddp(small_movielens, tiny_minilm, tmp_path):
    """configs/recommendation_text_tower.yaml (the item tower, grad_items; a tiny random encoder with MiniLM's
    tokenizer, as the weights do not matter here) on 60 movies: 2 frozen steps, 2 trained."""
    log, ranks = _fit_ddp(
        tmp_path,
        "--config",
        str(CONFIGS / "recommendation_text_tower.yaml"),
        "--data.root",
        str(small_movielens),
        "--data.batch_size",
        "64",
        "--model.net_kwargs",
        f"{{pretrained: {tiny_minilm}, max_length: 12, dim: 16, grad_items: 8}}",
        "--model.finetune.freeze_epochs",
        "0",
        "--model.finetune.freeze_steps",
        "2",
        "--trainer.max_steps",
        "4",
    )
    count = _unfrozen_count(ranks, "net.text")
    assert log.count(LINE) == 1 and f"unfroze {count} tensors under net.text at epoch 0, step 2" in log
    _assert_in_sync_and_trained(ranks, "net.text", 4)


@pytest.mark.slow
def test_whisper_freeze_schedule_under_plain_ddp(tmp_path, tiny_whisper, monkeypatch):
    """configs/speech_whisper.yaml (its frozen encoder; a tiny random Whisper with tiny.en's tokenizer, as the
    weights do not matter here) on 8 prompts: 1 frozen step, 1 with the encoder trained."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    log, ranks = _fit_ddp(
        tmp_path,
        "--config",
        str(CONFIGS / "speech_whisper.yaml"),
        "--model.pretrained",
        str(tiny_whisper),
        "--data.include",
        json.dumps([f"{p}.wav" for p in PROMPTS[:8]]),
        "--data.batch_size",
        "2",
        "--data.val_fraction",
        "0.0",
        "--data.test_fraction",
        "0.0",
        "--model.finetune.freeze_epochs",
        "0",
        "--model.finetune.freeze_steps",
        "1",
        "--trainer.max_steps",
        "2",
        "--model.scheduler.name",
        "none",
    )  # a 2-step cosine would give the second step lr 0
    count = _unfrozen_count(ranks, "model.model.encoder")
    assert log.count(LINE) == 1 and f"unfroze {count} tensors under model.model.encoder at epoch 0, step 1" in log
    _assert_in_sync_and_trained(ranks, "model.model.encoder", 2)
