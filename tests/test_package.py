"""The package as users install it: a wheel with one top-level name (``recipes``) holding every source file
and config, installed without -e into a fresh virtual environment, run from a folder whose own
``data.py``, ``modules.py`` and ``data/`` would shadow a checkout's folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]
SHADOWS = {"data.py": "", "modules.py": "", "data/__init__.py": "", "configs/__init__.py": ""}


def _installed_name(path: Path) -> str:
    """The dotted package a checkout folder installs as (pyproject's package-dir)."""
    rel = path.relative_to(ROOT).parts
    for name, folder in sorted(PACKAGE_DIR.items(), key=lambda kv: -len(kv[1])):
        if rel[: len(Path(folder).parts)] == Path(folder).parts:
            return ".".join([name, *rel[len(Path(folder).parts) :]])
    raise AssertionError(f"{path} is in no package-dir folder")


def _source_files() -> list[Path]:
    return sorted(
        p for folder in PACKAGE_DIR.values() for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml")
    )


def test_every_folder_is_a_listed_package():
    """A new subpackage must be added to pyproject's list, or the wheel would silently lack it."""
    folders = {_installed_name(p.parent) for p in _source_files()}
    assert folders == set(PYPROJECT["tool"]["setuptools"]["packages"])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the tracked files (as from a clean clone), with this venv's setuptools."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    )
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (whl,) = dist.glob("recipes-*.whl")
    return whl


def test_the_wheel_holds_one_top_level_name_and_every_file(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"recipes", f"{wheel.name.split('-py3')[0]}.dist-info"}
    top = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top).decode().split() == ["recipes"]
    expected = {_installed_name(p.parent).replace(".", "/") + "/" + p.name for p in _source_files()}
    assert expected <= set(names), sorted(expected - set(names))


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed without -e; the heavy dependencies (torch, Lightning...) come
    from the project's venv through a .pth line, whose own .pth files (the editable install's finder) are
    not read, so only the wheel provides ``recipes``."""
    env = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    purelib = Path(
        subprocess.run(
            [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (purelib / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env


def _run(venv: Path, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "recipes"), *args],
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_installed_package_runs_from_a_folder_that_shadows_its_names(venv, tmp_path):
    for name in SHADOWS:  # each raises if imported: the package must never pick them up
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"raise ImportError('the user\\'s own {name} was imported')\n")
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import recipes.data.batching as b; print(b.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where and str(ROOT) not in where  # the wheel's code, not the checkout's

    listed = _run(venv, tmp_path, "list", "configs")
    assert listed.returncode == 0, listed.stderr
    for name in ("image_classification_digits", "speech_whisper", "benchmark/small"):
        assert name in listed.stdout

    quiet = [
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.default_root_dir",
        "runs/digits",
    ]
    fit = _run(venv, tmp_path, "fit", "--config", "image_classification_digits", "--trainer.max_epochs", "1", *quiet)
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert (tmp_path / "runs" / "digits" / "checkpoints" / "last.ckpt").is_file()
    test = _run(venv, tmp_path, "test", "--config", "image_classification_digits", "--ckpt_path", "best", *quiet)
    assert test.returncode == 0, test.stderr[-2000:]
    assert "test/acc" in test.stdout

    quick = "--only [regression] --studies 1 --trials 3".split()  # a prefix of the published study 0
    bench = _run(venv, tmp_path, "benchmark", "--config", "benchmark/small", *quick)
    assert bench.returncode == 0, bench.stderr[-2000:]
    records = [
        json.loads(line)
        for line in (tmp_path / "runs" / "benchmark" / "small" / "results.jsonl").read_text().splitlines()
    ]
    assert records and {r["workload"] for r in records} == {"regression"} and {r["study"] for r in records} == {0}
    assert any(r["status"] == "reached" for r in records)
    # the run keys name the shipped config, not the site-packages path: the checkout's results resume here
    assert {r["config"]["workload"]["config"] for r in records} == {"configs/regression.yaml"}
    published = {
        json.loads(line)["key"]
        for line in (ROOT / "docs" / "benchmark_small" / "results.jsonl").read_text().splitlines()
    }
    assert {r["key"] for r in records} <= published
