"""Configs by name: every shipped YAML is found from any folder, listed with its purpose, copied for editing;
suites name task configs by name or relative to the suite file, and a run's key does not depend on where
its config lives."""

from __future__ import annotations

import json
import shutil

import pytest

from recipes.__main__ import main
from recipes.benchmark.command import load_suite
from recipes.config_files import config_dir, config_id, config_names, purpose, resolve_config, resolve_config_args
from recipes.modules.errors import ConfigError
from tests.conftest import CONFIGS

SHIPPED = sorted(p.relative_to(CONFIGS).with_suffix("").as_posix() for p in CONFIGS.rglob("*.yaml"))


def test_names_are_the_files_under_configs():
    assert config_dir().resolve() == CONFIGS.resolve()
    assert sorted(config_names()) == SHIPPED and "benchmark/small" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_name_resolves_from_any_folder_and_has_a_purpose(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config(name) == CONFIGS / f"{name}.yaml"
    assert resolve_config(f"{name}.yaml") == CONFIGS / f"{name}.yaml"
    assert len(purpose(resolve_config(name))) > 20  # the YAML's opening comment


def test_a_path_wins_over_a_name_and_a_bad_value_lists_the_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression").write_text("# mine\n")
    assert resolve_config("regression") == tmp_path / "regression"  # the user's own file first
    for bad in ("regresion", "../configs/regression", "nope.yaml"):
        with pytest.raises(ConfigError, match="no such file and no shipped config of that name") as err:
            resolve_config(bad)
        assert "image_classification_digits" in str(err.value) and "benchmark/small" in str(err.value)
    assert resolve_config_args(
        ["fit", "--config=regression", "-c", "regression.yaml", "--config", '{"seed_everything": 1}']
    ) == [
        "fit",
        "--config",
        str(tmp_path / "regression"),
        "-c",
        str(CONFIGS / "regression.yaml"),
        "--config",
        '{"seed_everything": 1}',
    ]


def test_bad_config_name_is_one_line_exit_2(capsys):
    assert main(["fit", "--config", "image_clasification"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recipes: --config image_clasification: no such file")


def test_list_configs_prints_every_name_with_its_purpose(capsys):
    assert main(["list", "configs"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert "scikit-learn digits (1,797 8x8 images)" in out


def test_cp_copies_and_never_overwrites(tmp_path, capsys):
    assert main(["cp", "regression", str(tmp_path)]) == 0
    copied = tmp_path / "regression.yaml"
    assert copied.read_text() == (CONFIGS / "regression.yaml").read_text()
    assert main(["cp", "benchmark/small", str(tmp_path / "mine.yaml")]) == 0 and (tmp_path / "mine.yaml").is_file()
    capsys.readouterr()
    for argv, message in (
        (["cp", "regression", str(tmp_path)], "already exists"),
        (["cp", "regresion", "x.yaml"], "no shipped config"),
        (["cp", "regression", str(tmp_path / "no" / "x.yaml")], "does not exist"),
        (["cp", "regression"], "takes a config name"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def _suite(folder, config: str) -> str:
    suite = {
        "name": "t",
        "results": str(folder / "results.jsonl"),
        "studies": 1,
        "trials": 1,
        "workloads": [
            {
                "name": "regression",
                "config": config,
                "metric": "val/dist_to_opt",
                "mode": "min",
                "target": 0.1,
                "max_steps": 10,
                "max_runtime": 10.0,
            }
        ],
        "submissions": [{"label": "adamw", "optimizer": {"name": "adamw", "lr": 0.1}, "search_space": {}}],
    }
    (folder / "suite.yaml").write_text(json.dumps(suite))
    return str(folder / "suite.yaml")


def test_suites_name_configs_by_name_or_relative_to_the_suite_file(tmp_path, monkeypatch):
    for folder in ("cwd", "a"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    by_name, _ = load_suite(["--config", _suite(tmp_path / "a", "regression")])
    by_path, _ = load_suite(["--config", _suite(tmp_path, str(CONFIGS / "regression.yaml"))])
    assert by_name.runs()[0].key == by_path.runs()[0].key  # the shipped file, named either way
    assert by_name.runs()[0].spec["workload"]["config"] == "configs/regression.yaml"

    for folder in (tmp_path / "x", tmp_path / "y" / "deeper"):  # a user's copy beside the suite, in two places
        folder.mkdir(parents=True)
        shutil.copy(CONFIGS / "regression.yaml", folder / "my_regression.yaml")
    keys = {
        load_suite(["--config", _suite(f, "my_regression.yaml")])[0].runs()[0].key
        for f in (tmp_path / "x", tmp_path / "y" / "deeper")
    }
    assert len(keys) == 1  # same content, same key, wherever it lives
    assert config_id(tmp_path / "x" / "my_regression.yaml").startswith("sha256:")
    with pytest.raises(ConfigError, match="my_regression.yaml: no such file"):
        load_suite(["--config", _suite(tmp_path / "a", "my_regression.yaml")])  # relative to the suite, not the cwd


def test_a_shipped_suite_runs_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main("benchmark --config benchmark/small --only [regression] --studies 1 --dry_run true".split()) == 0
    assert "suite small" in capsys.readouterr().out


def test_paths_never_fall_back_to_shipped_names_and_inline_yaml_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for written_as_a_path in ("./regression.yaml", "./regression", str(tmp_path / "regression.yml")):
        with pytest.raises(ConfigError, match="no such file"):
            resolve_config(written_as_a_path)
    with pytest.raises(ConfigError, match="not a usable path"):
        resolve_config("x" * 300)
    inline = ["--config", "trainer: {max_epochs: 1}", "--config", "{seed_everything: 1}"]
    assert resolve_config_args(inline) == inline


def test_cp_to_a_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["cp", "regression", str(tmp_path / "newdir") + "/"]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "newdir").exists()
    assert main(["cp", "configs/regression.yaml", str(tmp_path / "r.yaml")]) == 0


def test_export_with_a_bad_argument_is_one_line(tmp_path, capsys):
    args = ["export", "--config", "regression", "--ckpt_path", "best", "--out_dir", str(tmp_path), "--model.bogus", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recipes:") and "bogus" in err[0]
