"""Own data: the new paths give the built-in paths' numbers on the same data, and they scale.

    python -m benchmarks.own_data                       # everything (about an hour on 2 cores)
    python -m benchmarks.own_data --parts same          # (a)-(c): the same answer through the user's formats
    python -m benchmarks.own_data --parts scale --tasks image rec    # the scale tables only, some tasks

Same answer, side by side, same seed and epochs:
  (a) Fashion-MNIST written out as a PNG class-folder tree (from the Debian IDX files) through the folder
      DataModule at 28x28 grayscale, against ``image_classification``;
  (b) ML-100K written as ML-25M's ``ratings.csv`` through ``--data.interactions``, against the built-in path;
  (c) the Asterisk split written as a JSONL manifest and as an audiofolder, against the built-in corpus.
Scale (synthetic data generated under a temporary folder, never in the repository):
  * a 100,000-image JPEG class-folder tree: training loader samples/s with 2 workers against torchvision's
    ImageFolder + DataLoader (same transforms, workers, batch size); peak RSS at 10,000 and 100,000 images;
  * a 25,000,000-row ratings.csv shaped like ML-25M: load+encode+split, one MF epoch, full-ranking evaluation of
    every user (time, peak RSS);
  * a 100,000-utterance manifest: set-up time and peak RSS; training utterances/s streamed with 2 workers against
    the in-memory path on the Asterisk set.
Each measurement runs in a fresh process (its own peak RSS: ``ru_maxrss`` of the process, and of its workers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import logged_metrics, print_table

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def _rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest finished child (worker), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def _child(name: str, *args: str) -> dict:
    """Run ``child_<name>(*args)`` in a fresh interpreter; its JSON result."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.own_data", "--child", name, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _recipes(stage: str, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "recipes", stage, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"recipes {stage} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _fit_test(root: Path, args: list[str]) -> tuple[dict[str, float], float]:
    common = [*args, "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]
    fit = _recipes("fit", *common)
    _recipes("test", *common, "--ckpt_path", "best")
    return logged_metrics(root), fit


# --- writing the user-shaped copies -------------------------------------------------------------------
def write_fashion_pngs(root: Path) -> Path:
    """Fashion-MNIST's 60,000 + 10,000 images as ``root/{train,test}/<class>/<n>.png`` (lossless)."""
    from torchvision.io import write_png

    from recipes.data.image.datamodule import FashionMNISTDataModule
    from recipes.data.image.fashion_mnist import FASHION_MNIST_DEBIAN, read_fashion_mnist

    t = read_fashion_mnist(None, FASHION_MNIST_DEBIAN, download=False)
    names = [c.replace("/", "-") for c in FashionMNISTDataModule.classes]
    for split, key in (("train", "train"), ("test", "test")):
        for n, (image, label) in enumerate(zip(t[f"{key}_images"], t[f"{key}_labels"].tolist())):
            path = root / split / names[label] / f"{n:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(image.unsqueeze(0), str(path))
    return root


def write_ml100k_csv(path: Path) -> Path:
    """ML-100K (RecBole's file, its row order) as ML-25M's ``ratings.csv``: userId,movieId,rating,timestamp."""
    from recipes.data.recommendation.files import recbole_folder

    lines = (recbole_folder() / "ml-100k.inter").read_text().splitlines()[1:]
    with open(path, "w") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        for line in lines:
            u, i, r, t = line.split("\t")
            fh.write(f"{u},{i},{float(r):.1f},{int(float(t))}\n")
    return path


def write_jpeg_tree(root: Path, count: int, size: int = 96, classes: int = 10) -> Path:
    """``count`` RGB JPEGs of ``size`` x ``size`` in ``classes`` class folders: Fashion-MNIST upscaled and tinted by
    class, so the pixels are real photographs' statistics of a kind, and each file decodes like a small photo."""
    import torch
    from torchvision.io import encode_jpeg
    from torchvision.transforms.v2 import functional as F

    from recipes.data.image.fashion_mnist import FASHION_MNIST_DEBIAN, read_fashion_mnist

    t = read_fashion_mnist(None, FASHION_MNIST_DEBIAN, download=False)
    images, labels = t["train_images"], t["train_labels"]
    tint = torch.rand(classes, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.4
    for c in range(classes):
        (root / "train" / f"class{c}").mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 1000):
        idx = torch.arange(start, min(count, start + 1000)) % len(images)
        big = F.resize(images[idx].unsqueeze(1), [size, size], antialias=True).expand(-1, 3, -1, -1)
        for n, (img, label) in enumerate(zip(big, labels[idx].tolist()), start):
            rgb = (img.float() * tint[label % classes]).to(torch.uint8)
            (root / "train" / f"class{label % classes}" / f"{n:06d}.jpg").write_bytes(
                encode_jpeg(rgb, quality=90).numpy().tobytes()
            )
    return root


def write_ratings_like_ml25m(path: Path, rows: int = 25_000_095, users: int = 162_541, items: int = 59_047) -> Path:
    """A ratings.csv shaped like ML-25M: Zipf-like item popularity, long-tailed user activity, half-star ratings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    item_p = 1.0 / np.arange(1, items + 1) ** 0.9
    user_p = rng.pareto(1.5, users) + 1.0
    chunk = 5_000_000
    with pacsv.CSVWriter(
        str(path),
        pa.schema(
            [("userId", pa.int64()), ("movieId", pa.int64()), ("rating", pa.float64()), ("timestamp", pa.int64())]
        ),
    ) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            table = pa.table(
                {
                    "userId": rng.choice(users, n, p=user_p / user_p.sum()) + 1,
                    "movieId": rng.choice(items, n, p=item_p / item_p.sum()) * 3 + 1,
                    "rating": rng.integers(1, 11, n) / 2.0,
                    "timestamp": rng.integers(789_652_009, 1_574_327_703, n),
                }
            )
            writer.write_table(table)
    return path


# --- the children: one measurement each, in a fresh process -----------------------------------------
def child_image_loader(root: str, workers: str, batches: str) -> dict:
    """Our training loader over a class-folder tree: samples/s (normalized batches, as the model gets them)."""
    from recipes.data.image.folder import ImageFolderDataModule

    dm = ImageFolderDataModule(root=root, image_size=64, num_workers=int(workers), batch_size=128, cache_dir=None)
    setup = time.perf_counter()
    dm.setup("fit")
    setup = time.perf_counter() - setup
    loader = dm.train_dataloader()
    it, n, warm = iter(loader), 0, 10
    for _ in range(warm):
        dm.on_after_batch_transfer(next(it), 0)
    start = time.perf_counter()
    for _ in range(int(batches)):
        x, *_ = dm.on_after_batch_transfer(next(it), 0)
        n += x.shape[0]
    rate = n / (time.perf_counter() - start)
    del it, loader
    dm._index = None  # noqa: SLF001  (drop the index before the children are reaped)
    own, kids = _rss_mb()
    return {"samples_per_s": rate, "setup_s": setup, "rss_mb": own, "worker_rss_mb": kids}


def child_imagefolder_loader(root: str, workers: str, batches: str) -> dict:
    """torchvision's ImageFolder + DataLoader with the same transforms (PIL decoding, per-sample collate)."""
    import torch
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    transform = T.Compose(
        [
            T.RandomResizedCrop(64, scale=(0.08, 1.0)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    setup = time.perf_counter()
    dataset = ImageFolder(str(Path(root) / "train"), transform=transform)
    setup = time.perf_counter() - setup
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=128, shuffle=True, num_workers=int(workers), persistent_workers=int(workers) > 0
    )
    it, n = iter(loader), 0
    for _ in range(10):
        next(it)
    start = time.perf_counter()
    for _ in range(int(batches)):
        x, _ = next(it)
        n += x.shape[0]
    rate = n / (time.perf_counter() - start)
    del it, loader
    own, kids = _rss_mb()
    return {"samples_per_s": rate, "setup_s": setup, "rss_mb": own, "worker_rss_mb": kids}


def child_rec_load(path: str) -> dict:
    """Read, encode and split a ratings file (leave-last-out), then the ranking datasets' set-up."""
    from recipes.data.recommendation.datamodule import InteractionsDataModule

    start = time.perf_counter()
    dm = InteractionsDataModule(task="ranking", interactions=path, split="leave_last_out")
    read = time.perf_counter() - start
    dm.setup("fit")
    total = time.perf_counter() - start
    own, _ = _rss_mb()
    return {
        "rows": len(dm.data),
        "users": dm.num_users,
        "items": dm.num_items,
        "read_s": read,
        "total_s": total,
        "rss_mb": own,
    }


def _rec_model(dm, batch_size: int):
    from recipes.modules.optim import OptimizerConfig, SchedulerConfig
    from recipes.modules.recommendation.ranking import RankingRecommender

    return RankingRecommender(
        net="mf",
        num_users=dm.num_users,
        num_items=dm.num_items,
        net_kwargs={"dim": 64},
        loss="bpr",
        optimizer=OptimizerConfig(name="adamw", lr=0.003, weight_decay=0.0),
        scheduler=SchedulerConfig(name="constant"),
    )


def _trainer(**kw):
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def child_rec_mf_epoch(path: str, batch_size: str) -> dict:
    """One full epoch of BPR-MF (dim 64, one negative) over the training split: samples/s."""
    import lightning as L

    from recipes.data.recommendation.datamodule import InteractionsDataModule

    dm = InteractionsDataModule(
        task="ranking", interactions=path, split="leave_last_out", batch_size=int(batch_size), num_negatives=1
    )
    model = _rec_model(dm, int(batch_size))

    class Clock(L.Callback):
        def on_train_epoch_start(self, *_):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, *_):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    _trainer(max_epochs=1, limit_val_batches=0, callbacks=[clock]).fit(model, dm)
    samples = len(dm.splits_index["train"])
    torch_save = Path(path).with_suffix(".mf.ckpt")
    import torch

    torch.save(model.state_dict(), torch_save)
    own, _ = _rss_mb()
    return {"samples": samples, "epoch_s": clock.seconds, "samples_per_s": samples / clock.seconds, "rss_mb": own}


def child_rec_full_ranking(path: str, eval_batch_size: str) -> dict:
    """Full-ranking HR@10/NDCG@10 of every user's held-out item over every item they have not rated."""
    import torch

    from recipes.data.recommendation.datamodule import InteractionsDataModule

    dm = InteractionsDataModule(
        task="ranking", interactions=path, split="leave_last_out", eval_batch_size=int(eval_batch_size)
    )
    model = _rec_model(dm, 0)
    ckpt = Path(path).with_suffix(".mf.ckpt")
    if ckpt.is_file():
        model.load_state_dict(torch.load(ckpt, weights_only=True), strict=False)
    start = time.perf_counter()
    out = _trainer().test(model, dm, verbose=False)[0]
    seconds = time.perf_counter() - start
    own, _ = _rss_mb()
    return {"users": len(dm.splits_index["test"]), "seconds": seconds, "hr@10": out["test/hr@10"], "rss_mb": own}


def write_asterisk_listings(work: Path) -> tuple[Path, Path]:
    """The built-in Asterisk corpus (its utterances, in its order) as a JSONL manifest with durations, and as an
    audiofolder (the WAVs copied under one folder, ``metadata.csv`` with file_name,transcription; no durations:
    they are read from the headers)."""
    import shutil

    import soundfile as sf

    from recipes.data.speech.corpora import read_asterisk

    utts = read_asterisk()
    manifest = work / "asterisk.jsonl"
    with open(manifest, "w") as fh:
        for path, text in zip(utts.paths, utts.texts):
            fh.write(json.dumps({"audio": path, "text": text, "duration": sf.info(path).duration}) + "\n")
    folder = work / "asterisk_folder"
    rows = ["file_name,transcription"]
    for n, (path, text) in enumerate(zip(utts.paths, utts.texts)):
        name = f"clips/{n:04d}_{Path(path).name}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / name)
        rows.append(f'{name},"{text.replace(chr(34), chr(39))}"')
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return manifest, folder


def write_big_manifest(path: Path, lines: int = 100_000) -> Path:
    """``lines`` manifest rows with durations, listing the Asterisk recordings over and over."""
    import soundfile as sf

    from recipes.data.speech.corpora import read_asterisk

    utts = read_asterisk()
    rows = [
        json.dumps({"audio": p, "text": t, "duration": sf.info(p).duration}) for p, t in zip(utts.paths, utts.texts)
    ]
    with open(path, "w") as fh:
        for n in range(lines):
            fh.write(rows[n % len(rows)] + "\n")
    return path


def child_speech_setup(manifest: str) -> dict:
    """Set-up of a manifest corpus: index, split, vocabulary, targets; no waveform read."""
    from recipes.data.speech.datamodule import SpeechDataModule

    start = time.perf_counter()
    dm = SpeechDataModule(corpus="manifest", manifest=manifest, cache_dir=None)
    dm.setup("fit")
    seconds = time.perf_counter() - start
    own, _ = _rss_mb()
    return {"utterances": len(dm.utterances()), "setup_s": seconds, "rss_mb": own}


def child_speech_epochs(*overrides: str) -> dict:
    """The speech_recognition config's training epochs (the second and third timed): utterances/s."""
    import lightning as L

    from recipes.cli import build_cli

    class Clock(L.Callback):
        times: list[float] = []

        def on_train_epoch_start(self, *_):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, *_):
            self.times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--config", "configs/speech_recognition.yaml", "--trainer.max_epochs", "3"]
        args += ["--trainer.limit_val_batches", "0", "--trainer.default_root_dir", tmp, *overrides]
        args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"]
        cli = build_cli(args, run=False)
        clock = Clock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, cli.datamodule)
        n = len(cli.datamodule.dataset("fit"))
    own, kids = _rss_mb()
    seconds = sorted(clock.times[1:])[0]
    return {"utterances": n, "epoch_s": seconds, "utterances_per_s": n / seconds, "rss_mb": own, "worker_rss_mb": kids}


CHILDREN = {
    "image_loader": child_image_loader,
    "imagefolder_loader": child_imagefolder_loader,
    "rec_load": child_rec_load,
    "rec_mf_epoch": child_rec_mf_epoch,
    "rec_full_ranking": child_rec_full_ranking,
    "speech_setup": child_speech_setup,
    "speech_epochs": child_speech_epochs,
}


# --- the parts ----------------------------------------------------------------------------------------
def same_image(work: Path) -> None:
    tree = write_fashion_pngs(work / "fashion_pngs")
    common = ["--config", "image_classification"]  # its model, optimizer and schedule: 6 epochs, bf16
    builtin, t_builtin = _fit_test(work / "fm_builtin", common)
    folder_args = [
        *common,
        "--data",
        "recipes.data.image.folder.ImageFolderDataModule",
        "--data.root",
        str(tree),
        "--data.image_size",
        "28",
        "--data.channels",
        "1",
        "--data.mean",
        f"[{FASHION_MEAN}]",
        "--data.std",
        f"[{FASHION_STD}]",
        "--data.augment",
        "false",
        "--data.crop_fraction",
        "1.0",
        "--data.val_fraction",
        str(5000 / 60000),
        "--data.batch_size",
        "128",
        "--data.num_workers",
        "2",
        "--data.cache_dir",
        str(work / "cache"),
    ]
    folder, t_folder = _fit_test(work / "fm_folder", folder_args)
    print_table(
        "(a) Fashion-MNIST: the built-in IDX path against the same images as a PNG class-folder tree "
        "(image_classification as shipped: 6 epochs, bf16, seed 0)",
        ["path", "test acc", "fit wall s"],
        [
            ["image_classification (IDX, in memory)", f"{builtin['test/acc']:.4f}", f"{t_builtin:.0f}"],
            ["ImageFolderDataModule (PNG tree, 2 workers)", f"{folder['test/acc']:.4f}", f"{t_folder:.0f}"],
            ["difference (points)", f"{100 * (folder['test/acc'] - builtin['test/acc']):+.2f}", ""],
        ],
    )


def same_rec(work: Path) -> None:
    csv_path = write_ml100k_csv(work / "ratings.csv")
    common = ["--config", "recommendation"]
    builtin, t_builtin = _fit_test(work / "rec_builtin", common)
    table, t_table = _fit_test(work / "rec_table", [*common, "--data.interactions", str(csv_path)])
    print_table(
        "(b) ML-100K: the built-in RecBole files against the same ratings as ML-25M's ratings.csv "
        "(the recommendation config)",
        ["path", "test RMSE", "test MAE", "fit wall s"],
        [
            [
                "built-in (recbole wheel)",
                f"{builtin['test/rmse']:.4f}",
                f"{builtin['test/mae']:.4f}",
                f"{t_builtin:.0f}",
            ],
            [
                "--data.interactions ratings.csv",
                f"{table['test/rmse']:.4f}",
                f"{table['test/mae']:.4f}",
                f"{t_table:.0f}",
            ],
            ["difference", f"{table['test/rmse'] - builtin['test/rmse']:+.4f}", "", ""],
        ],
    )


def scale_image(work: Path) -> None:
    small, big = work / "jpeg10k", work / "jpeg100k"
    write_jpeg_tree(small, 10_000)
    write_jpeg_tree(big, 100_000)
    ours = _child("image_loader", str(big), "2", "150")
    theirs = _child("imagefolder_loader", str(big), "2", "150")
    ours10 = _child("image_loader", str(small), "2", "50")  # 8,000 training images: 62 batches an epoch
    print_table(
        "Images: training loader over a JPEG class-folder tree (96x96 RGB files, RandomResizedCrop 64 + flip, "
        "batch 128, 2 workers, 150 batches after 10)",
        ["loader", "images", "samples/s", "set-up s", "peak RSS MB (main)", "peak RSS MB (a worker)"],
        [
            [
                "torchvision ImageFolder + DataLoader",
                "100,000",
                f"{theirs['samples_per_s']:,.0f}",
                f"{theirs['setup_s']:.1f}",
                f"{theirs['rss_mb']:.0f}",
                f"{theirs['worker_rss_mb']:.0f}",
            ],
            [
                "recipes ImageFolderDataModule",
                "100,000",
                f"{ours['samples_per_s']:,.0f}",
                f"{ours['setup_s']:.1f}",
                f"{ours['rss_mb']:.0f}",
                f"{ours['worker_rss_mb']:.0f}",
            ],
            [
                "recipes ImageFolderDataModule",
                "10,000",
                f"{ours10['samples_per_s']:,.0f}",
                f"{ours10['setup_s']:.1f}",
                f"{ours10['rss_mb']:.0f}",
                f"{ours10['worker_rss_mb']:.0f}",
            ],
            [
                "ratio: ours / torchvision; RSS 100k / 10k",
                "",
                f"{ours['samples_per_s'] / theirs['samples_per_s']:.2f}",
                "",
                f"{ours['rss_mb'] / ours10['rss_mb']:.2f}",
                f"{ours['worker_rss_mb'] / ours10['worker_rss_mb']:.2f}",
            ],
        ],
    )


def scale_rec(work: Path) -> None:
    path = work / "ratings25m.csv"
    start = time.perf_counter()
    write_ratings_like_ml25m(path)
    written = time.perf_counter() - start
    load = _child("rec_load", str(path))
    epoch = _child("rec_mf_epoch", str(path), "8192")
    rank = _child("rec_full_ranking", str(path), "1024")
    print_table(
        f"Recommendation: a {load['rows']:,}-row ratings.csv shaped like ML-25M ({load['users']:,} users, "
        f"{load['items']:,} items, {path.stat().st_size / 2**20:,.0f} MB, written in {written:.0f} s), leave-last-out",
        ["step", "time s", "rate", "peak RSS MB"],
        [
            [
                "read + encode + split + ranking set-up",
                f"{load['total_s']:.1f}",
                f"read+encode+split {load['read_s']:.1f} s",
                f"{load['rss_mb']:,.0f}",
            ],
            [
                "one BPR-MF epoch (dim 64, batch 8192, 1 negative)",
                f"{epoch['epoch_s']:.0f}",
                f"{epoch['samples_per_s']:,.0f} samples/s",
                f"{epoch['rss_mb']:,.0f}",
            ],
            [
                f"full-ranking test of all {rank['users']:,} users over all items",
                f"{rank['seconds']:.0f}",
                f"{rank['users'] / rank['seconds']:,.0f} users/s (HR@10 {rank['hr@10']:.4f})",
                f"{rank['rss_mb']:,.0f}",
            ],
        ],
    )


SPEECH_SHORT = [
    "--config",
    "speech_recognition",
    "--trainer.max_epochs",
    "12",
]


def same_speech(work: Path) -> None:
    manifest, folder = write_asterisk_listings(work)
    runs = {
        "built-in (data.corpus asterisk)": [],
        "JSONL manifest with durations (data.corpus manifest)": [
            "--data.corpus",
            "manifest",
            "--data.manifest",
            str(manifest),
        ],
        "audiofolder, durations from headers (data.corpus folder)": [
            "--data.corpus",
            "folder",
            "--data.root",
            str(folder),
        ],
    }
    rows, first = [], None
    for n, (name, extra) in enumerate(runs.items()):
        m, t = _fit_test(work / f"speech{n}", [*SPEECH_SHORT, *extra, "--data.cache_dir", str(work / "cache")])
        first = first if first is not None else m["test/cer"]
        rows.append([name, f"{m['test/cer']:.4f}", f"{m['test/wer']:.4f}", f"{m['test/cer'] - first:+.4f}", f"{t:.0f}"])
    print_table(
        "(c) Asterisk: the built-in corpus against the same split as a manifest and as an audiofolder "
        "(speech_recognition for 12 epochs, seed 0)",
        ["path", "test CER", "test WER", "CER difference", "fit wall s"],
        rows,
    )


def scale_speech(work: Path) -> None:
    manifest = write_big_manifest(work / "big.jsonl")
    setup = _child("speech_setup", str(manifest))
    stream = _child("speech_epochs", "--data.num_workers", "2")
    memory = _child("speech_epochs", "--data.num_workers", "0", "--data.preload", "true")
    print_table(
        f"Speech: set-up of a {setup['utterances']:,}-utterance JSONL manifest with durations; training throughput "
        "of the speech_recognition config on the Asterisk set (best of epochs 2-3, no validation)",
        ["measurement", "value", "peak RSS MB (main)", "peak RSS MB (a worker)"],
        [
            [
                "set-up of 100,000 utterances (index, split, vocabulary, targets)",
                f"{setup['setup_s']:.1f} s",
                f"{setup['rss_mb']:.0f}",
                "",
            ],
            [
                "training, streamed from disk, 2 workers",
                f"{stream['utterances_per_s']:.1f} utterances/s",
                f"{stream['rss_mb']:.0f}",
                f"{stream['worker_rss_mb']:.0f}",
            ],
            [
                "training, in memory (preload, no workers)",
                f"{memory['utterances_per_s']:.1f} utterances/s",
                f"{memory['rss_mb']:.0f}",
                "",
            ],
            ["ratio streamed / in memory", f"{stream['utterances_per_s'] / memory['utterances_per_s']:.2f}", "", ""],
        ],
    )


PARTS = {
    "same": {"image": same_image, "rec": same_rec, "speech": same_speech},
    "scale": {"image": scale_image, "rec": scale_rec, "speech": scale_speech},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["same", "scale"], choices=list(PARTS))
    parser.add_argument("--tasks", nargs="+", default=["image", "rec", "speech"], choices=["image", "rec", "speech"])
    parser.add_argument("--workdir", default=None, help="where the generated data goes (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](*rest)))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for part in args.parts:
            for task in args.tasks:
                if task in PARTS[part]:
                    PARTS[part][task](Path(tmp))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
