"""The command line: every config parses against the code, --help/--print_config work, and bad input
ends with one clear message and a non-zero exit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recipes.__main__ import main
from recipes.cli import build_cli
from recipes.modules.errors import CheckpointError, ConfigError, DataError, RecipeError
from recipes.modules.optim import OptimizerConfig
from tests.conftest import CONFIGS, run_recipes

SUITES = CONFIGS / "benchmark"
ALL_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if SUITES not in p.parents)
ALL_SUITES = sorted(SUITES.glob("*.yaml"))


# Configs for the user's own data name no data of their own: the test gives them some.
OWN_DATA = {"image_folder": ["--data.root", "{image_tree}", "--data.cache_dir", "null"]}


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_instantiates(config, tmp_path, image_tree):
    data = [a.replace("{image_tree}", str(image_tree)) for a in OWN_DATA.get(config.stem, [])]
    cli = build_cli(["--config", str(config), "--trainer.default_root_dir", str(tmp_path), *data], run=False)
    assert cli.model is not None and cli.datamodule is not None
    text = config.read_text()
    assert text.startswith("# ") and f"recipes fit --config {config.stem}" in text  # the command that runs it, by name


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda p: p.stem)
def test_every_benchmark_suite_is_valid(suite, monkeypatch):
    from recipes.benchmark.command import load_suite

    monkeypatch.chdir(suite.parent.parent.parent.parent)  # suites name task configs by name, not by the working folder
    parsed, _ = load_suite(["--config", str(suite)])
    runs = parsed.runs()
    assert runs and len({r.key for r in runs}) == len(runs)  # every run distinct, so resume cannot confuse two
    per = parsed.studies * parsed.trials_per_study * max(1, len(parsed.initializers))
    assert len(runs) == len(parsed.workloads) * len(parsed.submissions) * per
    assert all(r.workload.max_runtime > 0 for r in runs)
    for workload in parsed.workloads:  # each workload's task config instantiates with its overrides, here on CPU
        run = next(r for r in runs if r.workload.name == workload.name)
        from recipes.benchmark.runner import run_args

        run = replace(run, trainer={**run.trainer, "accelerator": "cpu", "precision": "32-true"})
        assert build_cli(run_args(run), run=False).model is not None
    text = suite.read_text()
    assert text.startswith("# ") and f"recipes benchmark --config benchmark/{suite.stem}" in text


def test_datamodule_links_into_model(tmp_path):
    cli = build_cli(
        ["--config", str(CONFIGS / "image_classification.yaml"), "--trainer.default_root_dir", str(tmp_path)], run=False
    )
    assert cli.model.hparams.num_classes == 10 and cli.model.hparams.class_names[0] == "T-shirt/top"
    cfg = cli.model.optimizer_config  # the image recipe's Muon + AdamW; the factory's own default is AdamW
    assert (cfg.name, cfg.fallback.name) == ("muon", "adamw") and OptimizerConfig().name == "adamw"
    assert cli.trainer.checkpoint_callback.dirpath == str(tmp_path / "checkpoints")


def test_optimizer_overrides_from_command_line(tmp_path):
    cli = build_cli(
        [
            "--config",
            str(CONFIGS / "image_classification.yaml"),
            "--trainer.default_root_dir",
            str(tmp_path),
            "--model.optimizer.name",
            "sgd",
            "--model.optimizer.lr",
            "0.1",
            "--model.optimizer.momentum",
            "0.9",
            "--model.init.name",
            "orthogonal",
            "--model.scheduler.name",
            "wsd",
        ],
        run=False,
    )
    cfg = cli.model.optimizer_config
    assert (cfg.name, cfg.lr, cfg.momentum) == ("sgd", 0.1, 0.9)
    assert cli.model.init_config.name == "orthogonal" and cli.model.scheduler_config.name == "wsd"


def test_null_override_reaches_nested_dataclass():
    """--model.optimizer.momentum null must clear a value the YAML set (jsonargparse needs help here)."""
    out = run_recipes(
        "fit",
        "--config",
        "configs/image_classification_resnet18.yaml",
        "--model.optimizer.name",
        "adamw",
        "--model.optimizer.momentum",
        "null",
        "--model.optimizer.nesterov=null",
        "--print_config",
    )
    assert out.returncode == 0, out.stderr
    assert "momentum: null" in out.stdout and "nesterov: null" in out.stdout and "name: adamw" in out.stdout
    assert "net: resnet18" in out.stdout  # the rest of the config is kept


def test_help_and_print_config():
    out = run_recipes("fit", "--help")
    assert out.returncode == 0 and "--model CONFIG" in out.stdout
    out = run_recipes("fit", "--config", "configs/image_classification.yaml", "--print_config")
    assert (
        out.returncode == 0
        and "name: adamw" in out.stdout
        and "class_path: recipes.data.image.datamodule.FashionMNISTDataModule" in out.stdout
    )


def test_list_commands(capsys):
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    assert "adamw" in out and "adamw_schedulefree" in out and "lion" in out
    assert main(["list", "initializers"]) == 0 and "kaiming_normal" in capsys.readouterr().out
    assert main(["list", "schedulers"]) == 0 and "warmup-stable-decay" in capsys.readouterr().out
    assert main(["list", "widgets"]) == 2


BAD_INPUTS = [
    (["--model.optimizer.name", "adamww"], "unknown optimizer 'adamww'"),
    (["--model.optimizer.lr", "-0.1"], "learning rate must be >= 0"),
    (["--model.init.name", "kaiming"], "unknown initializer 'kaiming'"),
    (["--model.scheduler.name", "cosin"], "cosin"),
    (["--trainer.precision", "bf17"], "precision"),
    (["--model.optimizer.colour", "red"], "colour"),
    (["--model.optimizer.name", "adamw", "--model.optimizer.momentum", "0.9"], "takes no argument momentum"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_one_clear_line(tmp_path, extra, message, capsys):
    """In-process (a traceback would fail the test as an exception); test_package runs the installed command."""
    args = ["fit", "--config", "image_classification_digits", "--trainer.default_root_dir", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and message in err[-1] and err[-1].startswith("recipes:")


def test_error_family_one_prefix_never_wrapped_twice(tmp_path):
    for kind in (ConfigError, DataError, CheckpointError):
        assert issubclass(kind, RecipeError) and issubclass(kind, ValueError)
        assert str(kind("x is wrong", "do y")) == "recipes: x is wrong. Fix: do y"
    inner = DataError("no such folder", "give an existing folder")
    assert str(ConfigError(f"network rejected its arguments: {inner}", "fix model.net_kwargs")) == str(inner)


def test_an_error_inside_a_network_builder_is_reported_once(tmp_path):
    """The text tower's missing pretrained folder, raised inside build_rec_net's own error handling."""
    from recipes.modules.recommendation.nets import build_rec_net

    with pytest.raises(RecipeError) as err:
        build_rec_net("text_tower", 3, 4, pretrained=str(tmp_path / "missing"))
    assert str(err.value).count("recipes:") == 1 and str(err.value).count("Fix:") == 1
    assert "missing" in str(err.value) and "net_kwargs" not in str(err.value)


def test_config_hparams_are_stored_plain_and_checked():
    import lightning as L

    from recipes.modules.config import as_config, save_config_hparams
    from recipes.modules.optim import OptimizerConfig

    class Module(L.LightningModule):
        def __init__(
            self, width: int = 3, optimizer: OptimizerConfig | dict | None = None, extra: object = None
        ) -> None:
            super().__init__()
            self.optimizer_config = as_config(OptimizerConfig, optimizer)
            save_config_hparams(self, optimizer=self.optimizer_config)

    m = Module(5, {"name": "sgd", "lr": 0.5})
    assert m.hparams["width"] == 5 and m.hparams["optimizer"]["name"] == "sgd" and m.hparams["optimizer"]["lr"] == 0.5
    assert as_config(OptimizerConfig, m.hparams["optimizer"]) == m.optimizer_config  # rebuilt from the plain values
    assert Module(**{k: v for k, v in m.hparams.items()}).optimizer_config == m.optimizer_config
    with pytest.raises(TypeError, match="hyperparameters extra are not plain values"):
        Module(extra=object())


def test_a_run_prints_no_third_party_noise(tmp_path, capfd, caplog):
    """fit and test print what matters (one line a best checkpoint, metrics), not what the user cannot act on:
    Lightning's LitLogger tip, its own LeafSpec deprecation, its worker-count advice and the like."""
    import logging
    import warnings

    args = ["--config", str(CONFIGS / "image_classification_digits.yaml"), "--trainer.default_root_dir", str(tmp_path)]
    args += ["--trainer.max_epochs", "1", "--trainer.precision", "bf16-mixed"]
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        assert main(["fit", *args]) == 0
        assert main(["test", *args, "--ckpt_path", "best"]) == 0
    printed = capfd.readouterr()
    text = printed.out + printed.err + caplog.text + "\n".join(str(w.message) for w in seen)
    noise = ["LitLogger", "LeafSpec", "not supported by the model summary", "Couldn't infer the batch indices"]
    noise += ["does not have many workers", "Loading `train_dataloader` to estimate"]
    assert [n for n in noise if n in text] == []
    assert "'val/acc' reached" in text and "test/acc" in text  # one line a best checkpoint; the test metrics
