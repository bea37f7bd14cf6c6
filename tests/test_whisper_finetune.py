"""A short real fine-tuning of Whisper tiny.en on Asterisk recordings through the CLI, then ``export`` to a
directory that plain transformers loads and that transcribes exactly like the Lightning module's ``predict``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.__main__ import main
from recipes.data.speech.audio import read_audio
from recipes.data.speech.corpora import ASTERISK_ROOT, read_asterisk
from recipes.modules.pretrained import resolve_pretrained
from recipes.modules.speech.text import normalize_text
from tests.conftest import CONFIGS, QUIET

PROMPTS = [
    "agent-pass",
    "auth-thankyou",
    "conf-getpin",
    "conf-invalidpin",
    "conf-locked",
    "conf-onlyperson",
    "hello-world",
    "vm-goodbye",
    "vm-incorrect",
    "vm-nomore",
    "vm-password",
    "vm-theperson",
]


def _logged(root: Path, key: str) -> list[float]:
    rows = csv.DictReader(open(next((root / "logs").glob("version_*/metrics.csv"))))
    return [float(r[key]) for r in rows if r.get(key)]


def _manifest(folder: Path) -> Path:
    utts = read_asterisk()
    pairs = [
        (p, t)
        for p, t in zip(utts.paths, utts.texts)
        if Path(p).parent == Path(ASTERISK_ROOT) and Path(p).stem in PROMPTS
    ]
    assert len(pairs) == len(PROMPTS)
    manifest = folder / "prompts.jsonl"
    manifest.write_text("\n".join(json.dumps({"audio": str(p), "text": t}) for p, t in pairs))
    return manifest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_finetune_export_and_transcribe_like_the_module(tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    root = tmp_path / "run"
    args = [
        "--config",
        str(CONFIGS / "speech_whisper.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--data.corpus",
        "manifest",
        "--data.manifest",
        str(_manifest(tmp_path)),
        "--data.batch_size",
        "5",
        "--data.val_fraction",
        "0.17",
        "--data.test_fraction",
        "0.0",
        "--model.max_new_tokens",
        "24",
        "--data.cache_dir",
        str(tmp_path / "cache"),
    ]
    assert (
        main(
            [
                "fit",
                *args,
                "--trainer.max_epochs",
                "3",
                "--trainer.log_every_n_steps",
                "1",
                "--model.finetune.freeze_epochs",
                "3",
                "--model.optimizer.lr",
                "1e-4",
                "--model.scheduler.warmup_fraction",
                "0.0",
            ]
        )
        == 0
    )
    loss = _logged(root, "train/loss")
    assert len(loss) == 6 and np.mean(loss[-2:]) < 0.5 * np.mean(
        loss[:2]
    )  # the lowercase, unpunctuated targets are learnt
    assert _logged(root, "val/wer")[-1] < 0.5

    out = tmp_path / "exported"
    assert main(["export", *args, "--ckpt_path", "best", "--out_dir", str(out)]) == 0
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    processor = WhisperProcessor.from_pretrained(out)
    base = WhisperForConditionalGeneration.from_pretrained(resolve_pretrained("openai/whisper-tiny.en"))
    assert not torch.equal(
        model.model.decoder.layers[0].fc1.weight, base.model.decoder.layers[0].fc1.weight
    )  # fine-tuned
    assert torch.equal(
        model.model.encoder.layers[0].fc1.weight, base.model.encoder.layers[0].fc1.weight
    )  # frozen throughout

    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ("conf-getpin", "vm-goodbye", "hello-world"):
        shutil.copy(Path(ASTERISK_ROOT) / f"{name}.wav", folder / f"{name}.wav")
    pred = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                *args,
                "--ckpt_path",
                "best",
                "--data.predict_dir",
                str(folder),
                "--predictions.output",
                str(pred),
            ]
        )
        == 0
    )
    rows = {Path(r["id"]).stem: r["text"] for r in csv.DictReader(open(pred))}

    names = sorted(rows)
    waves = [read_audio(folder / f"{n}.wav", 16000) for n in names]
    features = processor([w.numpy() for w in waves], sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features, max_new_tokens=24)
    texts = [normalize_text(t) for t in processor.batch_decode(ids, skip_special_tokens=True)]
    assert len(rows) == 3 and texts == [rows[n] for n in names]
    assert rows["conf-getpin"] == "please enter the conference pin number"
