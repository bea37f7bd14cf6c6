"""Shared fixtures: run the CLI in-process, and skip GPU-marked tests where no CUDA device exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run where the GPU is lent)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def run_recipes(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m recipes ARGS`` in a fresh process (what a user runs); returns the completed process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "recipes", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# The image_folder recipe on the digits tree (``{image_tree}``: the image_tree fixture's path) with a small CNN:
# real PNG files decoded by two worker processes per loader.
IMAGE_FOLDER_SMALL = [
    "--data.root",
    "{image_tree}",
    "--model.net",
    "cnn",
    "--model.net_kwargs",
    "{widths: [8, 16]}",
    "--data.image_size",
    "8",
    "--data.channels",
    "1",
    "--data.num_workers",
    "2",
    "--data.cache_dir",
    "null",
]


def digits_args(root: Path, *extra: str) -> list[str]:
    """Arguments for a fast real fit on scikit-learn digits with the image recipe."""
    return [
        "--config",
        str(CONFIGS / "image_classification.yaml"),
        "--data",
        "recipes.data.image.datamodule.DigitsDataModule",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "3",
        "--trainer.log_every_n_steps",
        "5",
        *QUIET,
        *extra,
    ]


@pytest.fixture(scope="session")
def small_movielens(tmp_path_factory) -> Path:
    """The real RecBole files restricted to the first 60 movies (fast to encode), in the atomic layout."""
    from recipes.data.recommendation.files import recbole_folder

    src, out = recbole_folder(), tmp_path_factory.mktemp("ml-small")
    keep = lambda line: line.split("\t")[1].isdigit() and int(line.split("\t")[1]) <= 60  # noqa: E731
    inter = (src / "ml-100k.inter").read_text().splitlines()
    (out / "ml-100k.inter").write_text("\n".join([inter[0], *[line for line in inter[1:] if keep(line)]]) + "\n")
    (out / "ml-100k.user").write_text((src / "ml-100k.user").read_text())
    item = (src / "ml-100k.item").read_text().splitlines()
    (out / "ml-100k.item").write_text(
        "\n".join([item[0], *[line for line in item[1:] if int(line.split("\t")[0]) <= 60]]) + "\n"
    )
    return out


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A randomly initialized Whisper with tiny.en's tokenizer, processor and generation settings but one
    32-wide layer a side: for tests of the training path (precision, devices, resume), where tiny.en's
    150 MB checkpoints would spend most of the time writing files. The real weights have their own tests."""
    import shutil

    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from recipes.modules.pretrained import resolve_pretrained

    src, out = Path(resolve_pretrained("openai/whisper-tiny.en")), tmp_path_factory.mktemp("tiny-whisper")
    small = {
        "d_model": 32,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
    }
    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig.from_pretrained(src, **small)).save_pretrained(out)
    for f in src.iterdir():
        if f.name not in ("config.json", "model.safetensors", "SOURCE"):
            shutil.copy(f, out / f.name)  # the real tokenizer, processor and generation config
    return out


@pytest.fixture(scope="session")
def tiny_minilm(tmp_path_factory) -> Path:
    """A randomly initialized 2-layer, 32-wide BERT with all-MiniLM-L6-v2's tokenizer, for the text tower's
    training-path tests (precision, devices, resume); the real encoder has its own tests."""
    import shutil

    from transformers import AutoConfig, BertModel

    from recipes.modules.pretrained import resolve_pretrained

    src, out = (
        Path(resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")),
        tmp_path_factory.mktemp("tiny-minilm"),
    )
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    torch.manual_seed(0)
    BertModel(AutoConfig.from_pretrained(src, **small)).save_pretrained(out)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, out / name)
    return out


def write_image_tree(root: Path, test_every: int = 5, limit: int | None = None) -> Path:
    """scikit-learn's digits as an ImageFolder tree of real 8x8 grayscale PNGs: ``root/train/<digit>/`` and every
    ``test_every``-th image in ``root/test/<digit>/`` (class folders named ``d0`` ... ``d9``)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from torchvision.io import write_png

    digits = load_digits()
    for i, (image, target) in enumerate(zip(digits.images[:limit], digits.target[:limit])):
        split = "test" if i % test_every == 0 else "train"
        path = root / split / f"d{target}" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(torch.from_numpy((image * (255 / 16)).round().astype(np.uint8))[None], str(path))
    return root


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory) -> Path:
    """1,797 real digit PNGs as class folders (train/ and test/), shared by the image_folder tests."""
    return write_image_tree(tmp_path_factory.mktemp("image-tree"))
