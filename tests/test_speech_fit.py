"""Real short fits of the speech recipe through the CLI: on real Asterisk recordings, then predict on a folder
that mixes real recordings with a corrupt and an empty file; and on Russian transcripts with a vocabulary taken
from the data, which the checkpoint keeps."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from recipes.__main__ import main
from recipes.data.speech.corpora import ASTERISK_ROOT, read_asterisk
from recipes.modules.errors import ConfigError
from recipes.modules.speech.recognizer import SpeechRecognizer
from tests.conftest import CONFIGS, QUIET


def _logged(root: Path, key: str) -> list[float]:
    rows = csv.DictReader(open(next((root / "logs").glob("version_*/metrics.csv"))))
    return [float(r[key]) for r in rows if r.get(key)]


def _digits_manifest(folder: Path) -> Path:
    """The Asterisk number recordings (zero to twenty, then the tens): short, real, 8 kHz."""
    utts = read_asterisk()
    pairs = [
        (p, t) for p, t in zip(utts.paths, utts.texts) if Path(p).parent.name == "digits" and Path(p).stem.isdigit()
    ]
    assert len(pairs) == 28
    manifest = folder / "digits.jsonl"
    manifest.write_text("\n".join(json.dumps({"audio": str(p), "text": t}) for p, t in pairs))
    return manifest


# This small GRU, its lr and its 50 epochs were tuned under AdamW in float32 (the recipe's previous default).
ADAMW_FP32 = ["--model.optimizer.name", "adamw", "--model.optimizer.fallback", "null", "--trainer.precision", "32-true"]


def test_fit_then_transcribe_a_folder(tmp_path, caplog, capsys):
    root = tmp_path / "run"
    args = [
        "--config",
        str(CONFIGS / "speech_recognition.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--data.corpus",
        "manifest",
        "--data.manifest",
        str(_digits_manifest(tmp_path)),
        "--data.batch_size",
        "8",
        "--data.val_fraction",
        "0.15",
        "--data.test_fraction",
        "0.0",
        "--model.net_kwargs",
        '{"dim": 96, "hidden": 96, "layers": 2, "dropout": 0.0}',
        "--model.spec_augment",
        "false",
        "--data.cache_dir",
        str(tmp_path / "cache"),
        *ADAMW_FP32,
    ]
    assert (
        main(
            [
                "fit",
                *args,
                "--trainer.max_epochs",
                "50",
                "--trainer.log_every_n_steps",
                "1",
                "--model.optimizer.lr",
                "0.01",
                "--model.scheduler.warmup_fraction",
                "0.02",
            ]
        )
        == 0
    )
    loss = _logged(root, "train/loss")
    assert len(loss) >= 100 and np.mean(loss[-6:]) < 0.5 * np.mean(loss[:6])
    assert _logged(root, "val/cer")[-1] < 1.0  # validation decodes to text that overlaps the references

    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ("7", "12", "40"):
        shutil.copy(Path(ASTERISK_ROOT) / "digits" / f"{name}.wav", folder / f"{name}.wav")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.int16), 16000)  # a valid WAV header, no samples
    out = tmp_path / "pred.csv"
    with caplog.at_level(logging.WARNING):
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
                    str(out),
                    "--data.max_bad_fraction",
                    "0.5",  # 2 of the 5 files are bad
                ]
            )
            == 0
        )
    rows = list(csv.DictReader(open(out)))
    assert sorted(Path(r["id"]).name for r in rows) == ["12.wav", "40.wav", "7.wav"] and set(rows[0]) == {"id", "text"}
    assert all(r["text"].strip() for r in rows)  # the model emits characters, not only blanks
    assert "corrupt.wav: cannot decode" in caplog.text and "empty.wav: has no samples" in caplog.text
    assert "3 audio files to transcribe, 2 skipped" in caplog.text
    caplog.clear()
    code = main(["predict", *args, "--ckpt_path", "best", "--data.predict_dir", str(folder)])
    assert code == 2 and "2 of the 5 audio files of the files to transcribe cannot be read" in capsys.readouterr().err


RUSSIAN = ["привет мир", "добрый день", "спасибо", "до свидания", "мир", "день добрый", "привет", "да"]


def test_russian_transcripts_train_with_a_vocabulary_from_the_data(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    rows = []
    for i, text in enumerate(RUSSIAN):
        t = np.arange(int(16000 * (0.2 + 0.04 * i))) / 16000
        sf.write(folder / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (220 + 30 * i) * t), 16000)
        rows.append({"audio_filepath": f"audio/{i}.wav", "text": text.capitalize() + "!"})  # NeMo's keys
    manifest = tmp_path / "ru.jsonl"
    manifest.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    root = tmp_path / "run"
    args = [
        "fit",
        "--config",
        str(CONFIGS / "speech_recognition.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_steps",
        "3",
        "--trainer.log_every_n_steps",
        "1",
        "--data.corpus",
        "manifest",
        "--data.manifest",
        str(manifest),
        "--data.vocabulary",
        "from_data",
        "--data.normalization",
        "basic",
        "--data.batch_size",
        "2",
        "--data.val_fraction",
        "0.25",
        "--data.test_fraction",
        "0.0",
        "--data.num_workers",
        "0",
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--model.net_kwargs",
        "{dim: 32, hidden: 32, layers: 1}",
    ]
    assert main(args) == 0
    cer = _logged(root, "val/cer")
    assert len(_logged(root, "train/loss")) == 3 and len(cer) == 1 and np.isfinite(cer).all()
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    vocabulary = ckpt["hyper_parameters"]["vocabulary"]
    train_chars = set("".join(RUSSIAN))
    assert (
        vocabulary[0] == "<blank>" and vocabulary[1:] == sorted(vocabulary[1:]) and set(vocabulary[1:]) <= train_chars
    )
    assert len(vocabulary) >= 10 and ckpt["hyper_parameters"]["normalization"] == "basic"
    head = [v for k, v in ckpt["state_dict"].items() if k.endswith("head.weight")]
    assert head and head[0].shape[0] == len(vocabulary)  # one output a character of the data, plus the blank
    # the checkpoint's classes are checked against the data's when it is loaded: the same count is not enough
    shifted = ["<blank>", *(chr(ord(c) + 1) for c in vocabulary[1:])]
    with pytest.raises(ConfigError, match="trained with a vocabulary of"):
        SpeechRecognizer(vocabulary=shifted, net_kwargs={"dim": 32, "hidden": 32, "layers": 1}).on_load_checkpoint(ckpt)
    SpeechRecognizer(vocabulary=vocabulary, net_kwargs={"dim": 32, "hidden": 32, "layers": 1}).on_load_checkpoint(ckpt)
