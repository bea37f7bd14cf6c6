"""FSDP for the transformer fine-tunes, with the factory's parameter groups (weight decay by shape, layer-wise
lr decay, lr_mult) and the freeze schedule intact.

Lightning 2.6.6 runs ``strategy: fsdp`` only on CUDA: its accelerator connector refuses ``accelerator: cpu``,
and it hands torch's FSDP no device on a CPU, which torch then refuses. ``CPUFSDP`` below is Lightning's
FSDPStrategy with only that device filled in, so the CPU test exercises the same code path on two CPU
processes; the GPU tests run the plain ``--trainer.strategy fsdp`` where a CUDA device is lent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from lightning.pytorch.strategies import FSDPStrategy

from recipes.cli import build_cli
from recipes.modules.optim import create_optimizer
from recipes.modules.optim.groups import describe_groups
from tests.conftest import CONFIGS, QUIET, run_recipes
from tests.test_whisper_finetune import PROMPTS


class CPUFSDP(FSDPStrategy):
    """Lightning's FSDPStrategy with the CPU device given to torch's FSDP (tests only; see the module docstring)."""

    def _setup_model(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel(
            module=model,
            cpu_offload=self.cpu_offload,
            mixed_precision=self.mixed_precision_config,
            sharding_strategy=self.sharding_strategy,
            device_id=torch.device("cpu"),
            **self.kwargs,
        )


def _text_tower_args(root: Path, data: Path) -> list[str]:
    return [
        "--config",
        str(CONFIGS / "recommendation_text_tower.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--data.root",
        str(data),
        "--data.batch_size",
        "64",
        "--model.net_kwargs",
        "{max_length: 12, dim: 16, grad_items: 8}",
        "--model.finetune.freeze_epochs",
        "0",
        "--model.finetune.freeze_steps",
        "2",
        "--trainer.max_steps",
        "4",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.limit_val_batches",
        "0",
    ]


def _expected_groups(args: list[str]) -> list[tuple]:
    """(name, tensors, lr, weight decay) of each group the factory builds for the unwrapped model, as logged."""
    model = build_cli(args, run=False).model
    opt = create_optimizer(model, model.optimizer_config)
    return [
        (r["group"], r["tensors"], f"{r['lr']:.3g}", f"{r['weight_decay']:g}")
        for r in describe_groups(opt.param_groups)
    ]


def _logged_groups(log: str) -> list[tuple]:
    """The same from ParamGroupLogger's table (the parameter counts differ under FSDP: each rank counts its shard)."""
    rows = re.findall(r"^  (\S+)\s+(\d+) tensors\s+[\d,]+ params  lr (\S+)  wd (\S+)$", log, flags=re.M)
    return [(g, int(t), lr, wd) for g, t, lr, wd in rows]


def _fsdp_fit(tmp_path: Path, args: list[str], *extra: str) -> str:
    cb = json.dumps([{"class_path": "tests.test_ddp_unused.RankWeights", "init_args": {"out": str(tmp_path)}}])
    out = run_recipes("fit", *args, *extra, "--trainer.callbacks", cb, timeout=300)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    expected = _expected_groups(args)
    assert len(expected) > 10 and {wd for *_, wd in expected} == {"0", "0.05"}  # layer-wise lrs, decay and no-decay
    assert _logged_groups(log) == expected
    return log


def _assert_backbone_trained(tmp_path: Path, backbone: str, ranks: int) -> None:
    """Each rank holds a shard of each parameter (maybe empty); every parameter under ``backbone`` changed in
    some shard (not in every one: a shard of the word embeddings may hold only tokens the items never use)."""
    saved = [torch.load(tmp_path / f"rank{r}.pt", map_location="cpu", weights_only=True) for r in range(ranks)]
    names = [k for k in saved[0]["trainable"] if k.startswith(backbone + ".")]
    assert names and all(sum(s["end"][k].numel() for s in saved) > 0 for k in names)
    assert all(any(not torch.equal(s["start"][k], s["end"][k]) for s in saved if s["end"][k].numel()) for k in names)


def test_text_tower_under_fsdp_on_two_cpu_processes(small_movielens, tmp_path):
    """No checkpoint: Lightning gathers FSDP's full state dict with offload_to_cpu, which crashes when the shards
    are on the CPU already."""
    args = _text_tower_args(tmp_path / "run", small_movielens)
    strategy = json.dumps({"class_path": "tests.test_fsdp.CPUFSDP"})
    log = _fsdp_fit(
        tmp_path,
        args,
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        strategy,
        "--trainer.enable_checkpointing",
        "false",
    )
    assert "unfroze 101 tensors under net.text at epoch 0, step 2" in log
    _assert_backbone_trained(tmp_path, "net.text", 2)


@pytest.mark.gpu
def test_text_tower_under_plain_fsdp_on_cuda(small_movielens, tmp_path):
    args = _text_tower_args(tmp_path / "run", small_movielens)
    devices = min(2, torch.cuda.device_count())
    log = _fsdp_fit(
        tmp_path, args, "--trainer.accelerator", "gpu", "--trainer.devices", str(devices), "--trainer.strategy", "fsdp"
    )
    assert "unfroze 101 tensors under net.text at epoch 0, step 2" in log
    _assert_backbone_trained(tmp_path, "net.text", devices)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.gpu
def test_whisper_under_plain_fsdp_on_cuda_in_bf16_mixed(tmp_path, monkeypatch):
    """Lightning's FSDPPrecision clips only by value, so the config's norm clipping is switched to value."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = [
        "--config",
        str(CONFIGS / "speech_whisper.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--data.include",
        json.dumps([f"{p}.wav" for p in PROMPTS[:8]]),
        "--data.batch_size",
        "2",
        "--data.val_fraction",
        "0.25",
        "--data.test_fraction",
        "0.0",
        "--model.max_new_tokens",
        "24",
        "--model.finetune.freeze_epochs",
        "0",
        "--model.finetune.freeze_steps",
        "1",
        "--model.scheduler.name",
        "none",
        "--trainer.gradient_clip_algorithm",
        "value",
    ]
    devices = min(2, torch.cuda.device_count())
    log = _fsdp_fit(
        tmp_path,
        args,
        "--trainer.accelerator",
        "gpu",
        "--trainer.devices",
        str(devices),
        "--trainer.strategy",
        "fsdp",
        "--trainer.precision",
        "bf16-mixed",
        "--trainer.max_steps",
        "3",
        "--trainer.limit_val_batches",
        "1",
    )
    assert "unfroze 67 tensors under model.model.encoder at epoch 0, step 1" in log
    _assert_backbone_trained(tmp_path, "model.model.encoder", devices)
