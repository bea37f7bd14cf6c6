"""Mixed precision with gradient clipping: the factory's implementation "auto" keeps away from the fused kernels
exactly where Lightning refuses to clip them (checked against Lightning's own plugin), says so in one line,
an explicit fused is one ConfigError, the speech configs fit in bf16-mixed, and Whisper fine-tunes, tests and
predicts in bf16-mixed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch import nn

from recipes.__main__ import main
from recipes.data.speech.corpora import ASTERISK_ROOT
from recipes.modules.errors import RecipeError
from recipes.modules.optim import OptimizerConfig, constructor, create_optimizer
from recipes.modules.optim.constructor import fused_clipping_conflict
from tests.conftest import CONFIGS, QUIET
from tests.test_whisper_finetune import PROMPTS

BF16 = "Lightning refuses to clip a fused optimizer's gradients under precision bf16-mixed (gradient_clip_val 1)"
LINE = f"AdamW: foreach implementation, not fused: {BF16}"


@pytest.fixture
def info_lines(monkeypatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(constructor, "rank_zero_info", lines.append)
    return lines


def _trainer(precision: str, clip: float | None) -> L.Trainer:
    # Lightning turns precision 16-mixed into bf16-mixed on a CPU; its plugin, with a GradScaler, is given directly.
    flag = {"plugins": [MixedPrecision("16-mixed", "cpu")]} if precision == "16-mixed" else {"precision": precision}
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        gradient_clip_val=clip,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **flag,
    )


@pytest.mark.parametrize(
    ("precision", "clip", "conflict"),
    [
        ("bf16-mixed", 1.0, BF16),
        (
            "16-mixed",
            0.5,
            "Lightning refuses to clip a fused optimizer's gradients under precision 16-mixed (gradient_clip_val 0.5)",
        ),
        ("bf16-mixed", None, None),
        ("bf16-mixed", 0.0, None),
        ("32-true", 1.0, None),
        ("bf16-true", 1.0, None),
    ],
)
def test_conflict_is_exactly_what_lightning_refuses(precision, clip, conflict):
    trainer = _trainer(precision, clip)
    assert trainer.precision == precision and fused_clipping_conflict(trainer) == conflict
    model = nn.Linear(4, 2)
    model(torch.randn(3, 4)).sum().backward()
    fused, foreach = (
        torch.optim.AdamW(model.parameters(), fused=True),
        torch.optim.AdamW(model.parameters(), foreach=True),
    )
    if conflict:
        with pytest.raises(RuntimeError, match="does not allow for gradient clipping"):
            trainer.precision_plugin.clip_gradients(fused, clip, GradClipAlgorithmType.NORM)
    else:
        trainer.precision_plugin.clip_gradients(fused, clip or 0.0, GradClipAlgorithmType.NORM)
    trainer.precision_plugin.clip_gradients(foreach, clip or 0.0, GradClipAlgorithmType.NORM)  # what auto falls back to


def test_a_grad_scaler_that_clips_before_a_fused_step_unscales_is_a_conflict_too():
    """FSDPPrecision (GPU only) does not refuse: in 16-mixed it would clip the still-scaled gradients."""
    from lightning.pytorch.plugins.precision import FSDPPrecision

    fsdp16, fsdp_bf16 = FSDPPrecision("16-mixed"), FSDPPrecision("bf16-mixed")
    assert fused_clipping_conflict(SimpleNamespace(gradient_clip_val=1.0, precision_plugin=fsdp16)) == (
        "FSDPPrecision would clip a fused optimizer's gradients before unscaling them (gradient_clip_val 1)"
    )
    assert fused_clipping_conflict(SimpleNamespace(gradient_clip_val=1.0, precision_plugin=fsdp_bf16)) is None
    assert fused_clipping_conflict(SimpleNamespace(gradient_clip_val=None, precision_plugin=fsdp16)) is None


def test_auto_picks_foreach_under_the_conflict_and_says_why(info_lines):
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    opt = create_optimizer(model, OptimizerConfig(), fused_conflict=BF16)
    assert all(g["foreach"] and not g["fused"] for g in opt.param_groups)
    assert info_lines == [LINE]
    info_lines.clear()
    opt = create_optimizer(model, OptimizerConfig())  # no conflict: the fused kernel, silently
    assert all(g["fused"] for g in opt.param_groups) and info_lines == []
    opt = create_optimizer(
        model, OptimizerConfig(kwargs={"foreach": False}), fused_conflict="x"
    )  # the user's own choice stays
    assert all(not g["foreach"] and not g["fused"] for g in opt.param_groups) and info_lines == []


@pytest.mark.parametrize("cfg", [OptimizerConfig(implementation="fused"), OptimizerConfig(kwargs={"fused": True})])
def test_explicit_fused_under_the_conflict_is_one_config_error(cfg):
    with pytest.raises(RecipeError) as err:
        create_optimizer(nn.Linear(4, 2), cfg, fused_conflict=BF16)
    text = str(err.value)
    assert (
        "\n" not in text
        and text.startswith("recipes: ")
        and f"fused{': true' if cfg.kwargs else ''} does not work in this run: {BF16}. Fix: " in text
    )
    assert "Fix: " in text and "trainer.gradient_clip_val: null" in text


# AdamW alone (the speech recipe's Muon has no fused kernel; its AdamW fallback has, and the rule is the same)
ADAMW = ["--model.optimizer.name", "adamw", "--model.optimizer.fallback", "null"]


def _optimizer_groups(root: Path) -> list[dict]:
    state = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return state["optimizer_states"][0]["param_groups"]


@pytest.mark.parametrize("config", ["speech_recognition.yaml", "speech_recognition_conformer.yaml"])
def test_speech_configs_fit_in_bf16_mixed_with_their_clipping(config, tmp_path, info_lines):
    root = tmp_path / "run"
    args = [
        "fit",
        "--config",
        str(CONFIGS / config),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.precision",
        "bf16-mixed",
        "--data.include",
        '["digits/1*"]',
        "--data.batch_size",
        "4",
        "--trainer.max_steps",
        "3",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.num_sanity_val_steps",
        "0",
        *ADAMW,
    ]
    assert main(args) == 0
    assert [line for line in info_lines if "implementation" in line] == [LINE]
    groups = _optimizer_groups(root)
    assert groups and all(g["foreach"] and not g["fused"] for g in groups)


def test_speech_config_fit_with_explicit_fused_in_bf16_mixed_is_exit_2(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "speech_recognition.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.precision",
        "bf16-mixed",
        "--data.include",
        '["digits/1*"]',
        "--trainer.max_steps",
        "1",
        "--model.optimizer.implementation",
        "fused",
        *ADAMW,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"recipes: implementation fused does not work in this run: {BF16}. Fix: ")


@pytest.fixture
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _whisper_args(root: Path) -> list[str]:
    return [
        "--config",
        str(CONFIGS / "speech_whisper.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.precision",
        "bf16-mixed",
        "--data.include",
        json.dumps([f"{p}.wav" for p in PROMPTS[:8]]),
        "--data.batch_size",
        "3",
        "--data.val_fraction",
        "0.25",
        "--data.test_fraction",
        "0.0",
        "--model.max_new_tokens",
        "24",
    ]


def _metrics(root: Path) -> dict[str, float]:
    rows = csv.DictReader(open(next((root / "logs").glob("version_*/metrics.csv"))))
    return {k: float(v) for r in rows for k, v in r.items() if v}


def test_whisper_fits_and_validates_in_bf16_mixed(tmp_path, info_lines, _offline):
    root = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                *_whisper_args(root),
                "--trainer.max_steps",
                "2",
                "--trainer.num_sanity_val_steps",
                "0",
                "--trainer.log_every_n_steps",
                "1",
            ]
        )
        == 0
    )
    assert [line for line in info_lines if "implementation" in line] == [LINE]
    m = _metrics(root)
    assert (
        torch.isfinite(torch.tensor(m["train/loss"])) and m["val/wer"] < 0.5
    )  # the zero-shot model survives bf16 features


def test_whisper_tests_and_predicts_in_bf16_mixed(tmp_path, _offline):
    root = tmp_path / "run"
    assert main(["test", *_whisper_args(root), "--data.test_split", "val"]) == 0  # zero-shot: no checkpoint
    assert _metrics(root)["test/wer"] < 0.5
    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ("conf-getpin", "vm-goodbye"):
        shutil.copy(Path(ASTERISK_ROOT) / f"{name}.wav", folder / f"{name}.wav")
    out = tmp_path / "pred.csv"
    assert (
        main(["predict", *_whisper_args(root), "--data.predict_dir", str(folder), "--predictions.output", str(out)])
        == 0
    )
    rows = {Path(r["id"]).stem: r["text"] for r in csv.DictReader(open(out))}
    assert rows["conf-getpin"] == "please enter the conference pin number" and rows["vm-goodbye"] == "goodbye"


def test_16_mixed_on_cpu_is_an_error_not_a_silent_bf16(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.precision",
        "16-mixed",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("recipes:")
    ]  # pytest's argv warns too
    assert len(err) == 1 and err[0].startswith("recipes: precision 16-mixed") and "bf16-mixed" in err[0]
    assert not (tmp_path / "checkpoints").exists()


def test_a_strategy_lightning_refuses_is_one_line(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "fsdp",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("recipes:")]
    assert len(err) == 1 and "fsdp" in err[0] and "requires a GPU accelerator" in err[0] and "Fix:" in err[0]
