"""Real short fits of the speech recipe on real Asterisk recordings through the CLI, and predict on a
folder that mixes real recordings with a corrupt and an empty file."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from recipes.__main__ import main
from recipes.data.speech.corpora import ASTERISK_ROOT, read_asterisk
from tests.conftest import CONFIGS, QUIET


def _logged(root: Path, key: str) -> list[float]:
    rows = csv.DictReader(open(next((root / "logs").glob("version_*/metrics.csv"))))
    return [float(r[key]) for r in rows if r.get(key)]


def _digits_manifest(folder: Path) -> Path:
    """The Asterisk number recordings (zero to twenty, then the tens): short, real, 8 kHz."""
    pairs = [(p, t) for p, t in read_asterisk() if p.parent.name == "digits" and p.stem.isdigit()]
    assert len(pairs) == 28
    manifest = folder / "digits.jsonl"
    manifest.write_text("\n".join(json.dumps({"audio": str(p), "text": t}) for p, t in pairs))
    return manifest


def test_fit_then_transcribe_a_folder(tmp_path, caplog):
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
                ]
            )
            == 0
        )
    rows = list(csv.DictReader(open(out)))
    assert sorted(Path(r["id"]).name for r in rows) == ["12.wav", "40.wav", "7.wav"] and set(rows[0]) == {"id", "text"}
    assert all(r["text"].strip() for r in rows)  # the model emits characters, not only blanks
    assert "corrupt.wav: cannot decode" in caplog.text and "empty.wav: has no samples" in caplog.text
    assert "3 audio files to transcribe, 2 skipped" in caplog.text
