"""A bad checkpoint or a path that does not exist ends in one line (``recipes: <file> <problem>. Fix: ...``)
and exit status 2, wherever it is given: ``--ckpt_path`` of fit and test, ``model.pretrained``, export, and
every DataModule argument that names a file or folder. The checkpoints are real ones from tiny fits."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

from recipes.__main__ import main
from recipes.data.image.datamodule import FashionMNISTDataModule
from recipes.modules.errors import RecipeError
from tests.conftest import CONFIGS, QUIET

DIGITS = ["--config", str(CONFIGS / "image_classification_digits.yaml"), *QUIET]
RECOMMENDATION = ["--config", str(CONFIGS / "recommendation.yaml"), *QUIET]
SPEECH = ["--config", str(CONFIGS / "speech_recognition.yaml"), *QUIET]


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["recipes"])  # LightningCLI warns on stderr when it also sees pytest's arguments


def _unpickled(marker: str) -> None:
    """What the unsafe checkpoint would run when unpickled: it leaves a file behind."""
    Path(marker).write_text("unpickled")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_unpickled, (str(self.marker),))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A real image checkpoint and a real recommendation one, and broken files made from them."""
    root = tmp_path_factory.mktemp("checkpoints")
    assert main(["fit", *DIGITS, "--trainer.default_root_dir", str(root / "image"), "--trainer.max_epochs", "1"]) == 0
    assert (
        main(
            [
                "fit",
                *RECOMMENDATION,
                "--trainer.default_root_dir",
                str(root / "rec"),
                "--trainer.max_steps",
                "2",
                "--trainer.limit_val_batches",
                "1",
            ]
        )
        == 0
    )
    image = root / "image" / "checkpoints" / "last.ckpt"
    content = image.read_bytes()
    (root / "truncated.ckpt").write_bytes(content[: len(content) // 2])
    (root / "corrupt.ckpt").write_bytes(random.Random(0).randbytes(4096))
    torch.save({"state_dict": {}, "payload": _Payload(root / "unpickled.txt")}, root / "unsafe.ckpt")
    four = torch.load(image, map_location="cpu", weights_only=True)  # the same network trained on 4 classes
    four["state_dict"]["net.head.2.weight"], four["state_dict"]["net.head.2.bias"] = torch.randn(4, 128), torch.zeros(4)
    four["hyper_parameters"].update(num_classes=4, class_names=("a", "b", "c", "d"))
    torch.save(four, root / "four_classes.ckpt")
    return {
        "image": image,
        "image_run": root / "image",
        "missing": root / "missing.ckpt",
        "truncated": root / "truncated.ckpt",
        "corrupt": root / "corrupt.ckpt",
        "unsafe": root / "unsafe.ckpt",
        "marker": root / "unpickled.txt",
        "other_task": root / "rec" / "checkpoints" / "last.ckpt",
        "four_classes": root / "four_classes.ckpt",
    }


def _one_line(capsys, code: int, *fragments: str) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("recipes: ") and ". Fix: " in err[0], (code, err[-5:])
    for fragment in fragments:
        assert fragment in err[0], err[0]
    return err[0]


PROBLEM = {
    "missing": "does not exist. Fix: ",
    "truncated": "is truncated or corrupt (a zip archive without its central directory",
    "corrupt": (
        "is truncated or corrupt (not a torch.save file: it starts with cd 07 2c d8, "
        "neither a zip archive nor torch's legacy format)"
    ),
    "unsafe": (
        f"was refused as unsafe and not loaded: it needs {_unpickled.__module__}._unpickled, "
        "which torch.load(weights_only=True) does not allow"
    ),
    "other_task": (
        "is a checkpoint of recipes.modules.recommendation.rating.RatingRecommender, "
        "and the config builds recipes.modules.image.classifier.ImageClassifier"
    ),
    "four_classes": (
        "does not fit ImageClassifier: 2 tensors differ in shape "
        "(net.head.2.weight is [4, 128] in the checkpoint and [10, 128] in the model"
    ),
}


@pytest.mark.parametrize("kind", list(PROBLEM))
@pytest.mark.parametrize("command", ["fit", "test", "export"])
def test_bad_ckpt_path_is_one_line(files, tmp_path, capsys, command, kind):
    args = [command, *DIGITS, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(files[kind])]
    code = main([*args, "--out_dir", str(tmp_path / "out")] if command == "export" else args)
    line = _one_line(capsys, code, f"--ckpt_path {files[kind]} ", PROBLEM[kind])
    assert not files["marker"].exists()  # the unsafe pickle was never unpickled
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "out").exists()  # nothing ran
    if kind == "four_classes":
        assert "num_classes=4" in line and "--model.pretrained" in line


def test_unsafe_checkpoint_is_refused_even_with_weights_only_false(files, tmp_path, capsys):
    code = main(
        [
            "fit",
            *DIGITS,
            "--trainer.default_root_dir",
            str(tmp_path),
            "--ckpt_path",
            str(files["unsafe"]),
            "--weights_only",
            "false",
        ]
    )
    _one_line(capsys, code, str(files["unsafe"]), "refused as unsafe")
    assert not files["marker"].exists()


@pytest.mark.parametrize("kind", ["missing", "truncated", "corrupt", "unsafe", "other_task"])
def test_bad_pretrained_checkpoint_is_one_line(files, tmp_path, capsys, kind):
    code = main(["fit", *DIGITS, "--trainer.default_root_dir", str(tmp_path), "--model.pretrained", str(files[kind])])
    problem = (
        "(a checkpoint of recipes.modules.recommendation.rating.RatingRecommender) matches no tensor of SmallCNN"
        if kind == "other_task"
        else PROBLEM[kind]
    )
    _one_line(capsys, code, f"pretrained checkpoint {files[kind]} ", problem)
    assert not files["marker"].exists()


@pytest.mark.parametrize("command", ["fit", "test"])
def test_last_without_a_last_checkpoint_is_an_error(tmp_path, capsys, command):
    code = main([command, *DIGITS, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last"])
    _one_line(
        capsys,
        code,
        f"--ckpt_path last: no last.ckpt in {tmp_path / 'checkpoints'}",
        "leave out --ckpt_path to fit afresh",
    )
    assert not (tmp_path / "checkpoints").exists()  # no fresh run started in its place


def test_export_of_another_network_names_the_setting(files, tmp_path, capsys):
    code = main(
        [
            "export",
            *DIGITS,
            "--model.net_kwargs",
            "{widths: [8, 16]}",
            "--ckpt_path",
            str(files["image"]),
            "--out_dir",
            str(tmp_path),
        ]
    )
    _one_line(
        capsys,
        code,
        f"--ckpt_path {files['image']} does not fit ImageClassifier: 11 tensors differ in shape",
        "net.features.0.weight is [16, 1, 3, 3] in the checkpoint and [8, 1, 3, 3] in the model",
        "net_kwargs={'widths': [16, 32]}",
    )


def test_a_folder_is_not_a_checkpoint(files, tmp_path, capsys):
    folder = files["image"].parent
    code = main(["test", *DIGITS, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(folder)])
    _one_line(capsys, code, f"--ckpt_path {folder} is a folder, not a checkpoint file", "pass a file in it, e.g.")


def test_good_checkpoints_still_load(files, capsys):
    run = ["--trainer.default_root_dir", str(files["image_run"])]
    assert main(["validate", *DIGITS, *run, "--ckpt_path", "last"]) == 0
    assert main(["test", *DIGITS, *run, "--ckpt_path", str(files["image"])]) == 0
    assert main(["test", *DIGITS, *run, "--ckpt_path", "best"]) == 0
    assert "recipes:" not in capsys.readouterr().err


NOWHERE = "nowhere/at/all"
DATA_PATHS = [
    ("fit", ["--config", str(CONFIGS / "image_classification.yaml"), *QUIET], "root", NOWHERE),
    ("predict", DIGITS, "predict_dir", NOWHERE),
    ("fit", RECOMMENDATION, "root", NOWHERE),
    ("predict", RECOMMENDATION, "predict_pairs", f"{NOWHERE}.csv"),
    ("fit", SPEECH, "root", NOWHERE),
    ("fit", [*SPEECH, "--data.corpus", "librispeech"], "root", NOWHERE),
    ("fit", [*SPEECH, "--data.corpus", "manifest"], "manifest", f"{NOWHERE}.jsonl"),
    ("fit", SPEECH, "transcripts", f"{NOWHERE}.txt.gz"),
    ("predict", SPEECH, "predict_dir", NOWHERE),
    ("predict", SPEECH, "predict_paths", f"{NOWHERE}.wav"),
]


@pytest.mark.parametrize(
    ("command", "config", "key", "name"), DATA_PATHS, ids=[f"{c[1][1].rsplit('/', 1)[-1]}-{c[2]}" for c in DATA_PATHS]
)
def test_data_path_that_does_not_exist_is_an_error(tmp_path, capsys, command, config, key, name):
    path = tmp_path / name
    value = f"[{path}]" if key == "predict_paths" else str(path)
    code = main([command, *config, "--trainer.default_root_dir", str(tmp_path / "run"), f"--data.{key}", value])
    _one_line(capsys, code, f"--data.{key} {path} does not exist. Fix: ")


def test_fashion_mnist_root_without_the_files_never_falls_back(tmp_path):
    # the Debian copy exists on this machine; a root the user gave is still the only place looked at
    with pytest.raises(RecipeError, match=f"not found in {tmp_path} and the download failed"):
        FashionMNISTDataModule(root=str(tmp_path), download=False).setup("fit")


def test_a_checkpoint_of_the_retired_recommender_class_is_one_line(files, tmp_path, capsys):
    """Checkpoints written before rating and ranking became two classes name that, with the fix."""
    old = torch.load(files["other_task"], map_location="cpu", weights_only=True)
    old["hyper_parameters"]["_class_path"] = "recipes.modules.recommendation.recommender.Recommender"
    old["hyper_parameters"]["objective"] = "rating"
    path = tmp_path / "old.ckpt"
    torch.save(old, path)
    code = main(["test", *RECOMMENDATION, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(path)])
    _one_line(capsys, code, "is a checkpoint of recipes.modules.recommendation.recommender.Recommender", "fit it again")


def test_a_checkpoint_of_a_moved_class_still_loads(tmp_path):
    """A class moved to another file keeps reading its checkpoints: they name the old path (``supersedes``)."""
    args = [*SPEECH, "--trainer.default_root_dir", str(tmp_path), "--data.include", '["digits/*"]']
    args += ["--model.net_kwargs", "{dim: 16, hidden: 16, layers: 1, cell: lstm}", "--trainer.precision", "32-true"]
    tiny = ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]
    assert main(["fit", *args, *tiny]) == 0
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["_class_path"] == "recipes.modules.speech.recognizer.SpeechRecognizer"
    ckpt["hyper_parameters"]["_class_path"] = "recipes.modules.speech.ctc.SpeechRecognizer"  # as before the move
    torch.save(ckpt, tmp_path / "old.ckpt")
    assert main(["test", *args, *tiny, "--ckpt_path", str(tmp_path / "old.ckpt")]) == 0
