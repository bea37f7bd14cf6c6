"""A new user's own data, as the README's "Your own data" section runs it: ``recipes fit``, ``test`` and ``predict``
in fresh processes on small generated data for each task, with the shipped configs and only data overrides
(and a small network, to keep the suite fast)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import QUIET, run_recipes, write_image_tree

FAST = [*QUIET, "--trainer.max_epochs", "2"]


def _run(*args: str) -> None:
    proc = run_recipes(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _predictions(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(path)))


def test_image_folder_commands(tmp_path):
    data = write_image_tree(tmp_path / "photos", limit=500)
    args = [
        "--config",
        "image_folder",
        "--data.root",
        str(data),
        *FAST,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--model.net",
        "cnn",
        "--model.net_kwargs",
        "{widths: [8, 16]}",
        "--data.image_size",
        "16",
        "--data.batch_size",
        "32",
        "--data.cache_dir",
        str(tmp_path / "cache"),
    ]
    _run("fit", *args)
    test = _run("test", *args, "--ckpt_path", "best")
    assert "test/acc_d7" in test.stdout  # accuracy per class, named by the folders
    out = tmp_path / "pred.csv"
    _run(
        "predict",
        *args,
        "--ckpt_path",
        "best",
        "--data.predict_dir",
        str(data / "test"),
        "--predictions.output",
        str(out),
    )
    rows = _predictions(out)
    assert len(rows) == 100 and {r["label"] for r in rows} <= {f"d{i}" for i in range(10)}
    assert rows[0]["id"].endswith(".png")


def test_recommendation_table_commands(tmp_path):
    rng = np.random.default_rng(0)
    ratings = tmp_path / "ratings.csv"
    with open(ratings, "w") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        for n in range(3000):
            fh.write(f"{rng.integers(1, 120)},{rng.integers(1, 80) * 10},{rng.integers(1, 11) / 2},{1_000_000 + n}\n")
    args = [
        "--config",
        "recommendation",
        "--data.interactions",
        str(ratings),
        *FAST,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--model.net_kwargs",
        "{hidden: 16}",
    ]
    _run("fit", *args)
    _run("test", *args, "--ckpt_path", "best")
    out = tmp_path / "pred.csv"
    _run("predict", *args, "--ckpt_path", "best", "--data.predict_topk", "3", "--predictions.output", str(out))
    rows = _predictions(out)
    assert len(rows) == 3 * len({r.split(",")[0] for r in ratings.read_text().splitlines()[1:]})
    assert all(int(r["item"]) % 10 == 0 and 0.5 <= float(r["score"]) <= 5.0 for r in rows)  # own ids, own scale


def test_speech_folder_commands(tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    words = ["one", "two", "three", "four"]
    lines = ["file_name,transcription"]
    for n in range(24):
        t = np.arange(int(0.4 * 16000)) / 16000
        sf.write(data / f"{n:02d}.wav", 0.2 * np.sin(2 * np.pi * (200 + 100 * (n % 4)) * t), 16000)
        lines.append(f"{n:02d}.wav,{words[n % 4]}")
    (data / "metadata.csv").write_text("\n".join(lines) + "\n")
    args = [
        "--config",
        "speech_recognition",
        "--data.corpus",
        "folder",
        "--data.root",
        str(data),
        *FAST,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--model.net_kwargs",
        "{dim: 32, hidden: 32, layers: 1}",
        "--data.batch_size",
        "8",
        "--data.val_fraction",
        "0.2",
        "--data.test_fraction",
        "0.2",
        "--data.cache_dir",
        str(tmp_path / "cache"),
    ]
    _run("fit", *args)
    _run("test", *args, "--ckpt_path", "best")
    out = tmp_path / "pred.csv"
    _run("predict", *args, "--ckpt_path", "best", "--data.predict_dir", str(data), "--predictions.output", str(out))
    rows = _predictions(out)
    assert len(rows) == 24 and rows[0]["id"].endswith("00.wav") and "text" in rows[0]
