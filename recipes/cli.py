"""The command line: LightningCLI for fit/validate/test/predict, plus ``list``.

``python -m recipes fit --config image_classification`` picks the task's LightningModule
and DataModule from the YAML's ``class_path`` entries. On top of LightningCLI this adds a
``checkpoint`` group (best and last, in ``<default_root_dir>/checkpoints`` so ``--ckpt_path last``
resumes), a ``predictions`` group (the CSV that ``predict`` writes), CSV + TensorBoard loggers by
default, links from the datamodule to the model (classes, channels), and one-line error messages.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from typing import Any

import lightning as L
import torch
from jsonargparse import ArgumentError
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from recipes.checkpoint import RecipeCheckpoint
from recipes.data_health import DataHealth
from recipes.messages import format_error
from recipes.modules.checkpoint_file import check_class, check_compatible, config_class, read_checkpoint
from recipes.modules.errors import ConfigError, TrainingDiverged, recipe_line
from recipes.modules.prediction_writer import CSVPredictionWriter
from recipes.quiet import quiet_third_party
from recipes.resume_state import ResumeState
from recipes.strategy import ddp_strategy_for

__all__ = ["RecipeCLI", "build_cli", "run_cli", "best_checkpoint", "last_checkpoint"]

CKPT_FIX = "pass an existing checkpoint file, or --ckpt_path best|last after a fit with this config"


def _local_ckpt(path: object) -> bool:
    """A ckpt_path naming a local file: not None, a keyword Lightning resolves (best, last, hpc, registry) or a URL."""
    return (
        isinstance(path, str)
        and path not in ("best", "last", "hpc")
        and not path.startswith("registry")
        and "://" not in path
    )


class RecipeCLI(LightningCLI):
    """LightningCLI with the recipes defaults (see the module docstring)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(RecipeCheckpoint, "checkpoint")
        # verbose: one line each time a best checkpoint is saved (which metric, its value, the file)
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 1, "checkpoint.verbose": True})
        parser.add_lightning_class_args(CSVPredictionWriter, "predictions")

    def _link_data_to_model(self, cfg: Any) -> None:
        """The data class's ``model_links`` (attribute -> model argument, declared by each task's DataModule)
        as instantiation links: the model gets e.g. ``num_classes`` from the data it is trained on."""
        path = (cfg.get("data") or {}).get("class_path")
        if not path:
            return
        links = getattr(config_class(path), "model_links", {})
        model_path = (cfg.get("model") or {}).get("class_path")
        model_class = config_class(model_path) if model_path else None
        accepted = _init_arguments(model_class) if model_class is not None else None
        parser = self._parser(self.subcommand)
        for src, dst in links.items():
            if accepted is None or dst in accepted:  # a model that takes no such argument does not read it
                parser.link_arguments(f"data.{src}", f"model.init_args.{dst}", apply_on="instantiate")

    def _checkpoint(self, path: str) -> dict[str, Any]:
        """``--ckpt_path``'s content, read once (safely) for both checks below."""
        cached = getattr(self, "_ckpt_cache", None)
        if cached is None or cached[0] != path:
            self._ckpt_cache = (path, read_checkpoint(path, "--ckpt_path", CKPT_FIX))
        return self._ckpt_cache[1]

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's step that merges ``--ckpt_path``'s hyper_parameters into the config (the
        checkpoint's settings win, as in Lightning), preceded by a safe read and a check that the file
        is a checkpoint of the config's model class: merging another task's settings into this config
        would fail far from the cause. Lightning's version unpickles the file with no error of ours."""
        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        if not _local_ckpt(path):
            return
        ckpt = self._checkpoint(path)
        model = self.config[sub].get("model")
        check_class(ckpt, model.get("class_path") if model is not None else None, path)
        hparams = {k: v for k, v in (ckpt.get("hyper_parameters") or {}).items() if k != "_instantiator"}
        if not hparams:
            return
        if "_class_path" in hparams:  # check_class found it the config's class, or the same class moved
            written = hparams.pop("_class_path")
            class_path = (model.get("class_path") if model is not None else None) or written
            hparams = {"class_path": class_path, "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)
        except (ArgumentError, SystemExit) as exc:
            fact = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ConfigError(
                f"--ckpt_path {path}: its hyper_parameters do not fit the config's model ({fact})",
                "pass the config it was trained with",
            ) from None

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        self._link_data_to_model(cfg)
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = os.path.join(cfg.trainer.default_root_dir or ".", "checkpoints")
        _check_precision(cfg.trainer)
        ckpt = cfg.get("ckpt_path") if self.subcommand else None
        if ckpt == "best":
            cfg.ckpt_path = best_checkpoint(cfg.checkpoint.dirpath)
        elif ckpt == "last":
            cfg.ckpt_path = last_checkpoint(cfg.checkpoint.dirpath)
        if ckpt is not None and "weights_only" in cfg:
            cfg.weights_only = True  # read_checkpoint loaded it so: Lightning must not unpickle it any other way

    def after_instantiate_classes(self) -> None:
        """Check ``--ckpt_path`` against the model just built, before Lightning's strict ``load_state_dict``
        (resuming a fit is always strict; evaluation follows the model's ``strict_loading``)."""
        path = self.config[self.subcommand].get("ckpt_path") if self.subcommand else None
        if _local_ckpt(path):
            strict = self.subcommand == "fit" or getattr(self.model, "strict_loading", True)
            check_compatible(self._checkpoint(path), self.model, path, strict=strict)
        self._ckpt_cache = None  # Lightning reads the file itself; keep no second copy during the run

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer_cfg = dict(self._get(self.config_init, "trainer", default={}))
        callbacks = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        if trainer_cfg.get("enable_checkpointing") is False:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        if trainer_cfg.get("logger") in (None, True):
            root = trainer_cfg.get("default_root_dir") or "."
            csv = CSVLogger(root, name="logs")
            kwargs["logger"] = [csv, TensorBoardLogger(root, name="logs", version=csv.version, default_hp_metric=False)]
        if trainer_cfg.get("logger") is not False:
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        callbacks.append(ResumeState())  # with the loaders' positions, a resumed fit continues exactly
        callbacks.append(DataHealth())  # undecodable files counted in the epoch's metrics
        user_callbacks = trainer_cfg.get("callbacks") or []
        has_bar = any(
            isinstance(c, ProgressBar)
            for c in (user_callbacks if isinstance(user_callbacks, list) else [user_callbacks])
        )
        if trainer_cfg.get("enable_progress_bar", True) is not False and not has_bar:
            callbacks.append(RichProgressBar(leave=True))
        trainer_cfg["strategy"] = ddp_strategy_for(
            self.model, trainer_cfg.get("strategy", "auto")
        )  # frozen/skipped parameters under DDP
        try:
            return self._instantiate_trainer({**trainer_cfg, **kwargs}, callbacks)
        except (
            ValueError,
            MisconfigurationException,
        ) as exc:  # Lightning refuses the accelerator/strategy/precision mix
            if recipe_line(exc) is not None:
                raise
            fact = " ".join(str(exc).split()).rstrip(".")
            raise ConfigError(
                f"Lightning refuses these trainer settings: {fact}",
                "change trainer.accelerator / devices / strategy / precision (python -m recipes fit --help)",
            ) from None


def _init_arguments(cls: type) -> set[str]:
    """The named constructor arguments of ``cls``, following ``**kwargs`` up to the base classes' constructors
    (as jsonargparse does)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def _check_precision(trainer: Any) -> None:
    """Lightning runs ``16-mixed`` on a CPU as ``bf16-mixed`` with a warning; a user's choice is not swapped here."""
    on_cpu = trainer.get("accelerator") == "cpu" or (
        trainer.get("accelerator") in (None, "auto") and not torch.cuda.is_available()
    )
    if str(trainer.get("precision")) in ("16-mixed", "16") and on_cpu:
        raise ConfigError(
            "precision 16-mixed (float16 autocast with a gradient scaler) needs a CUDA device; on this CPU Lightning "
            "would run bf16-mixed instead",
            "use --trainer.precision bf16-mixed on a CPU, or --trainer.accelerator gpu",
        )


def best_checkpoint(dirpath: str) -> str:
    """The best checkpoint that fitting recorded in ``dirpath/last.ckpt`` (Lightning knows "best" only
    inside the process that fitted, so a later ``test --ckpt_path best`` reads it from there)."""
    last = os.path.join(dirpath, "last.ckpt")
    if not os.path.isfile(last):
        raise ConfigError(
            f"--ckpt_path best: no {last} to read the best checkpoint from", "run fit first, or pass a checkpoint path"
        )
    states = read_checkpoint(last, "--ckpt_path best: the record", "run fit first, or pass a checkpoint path").get(
        "callbacks", {}
    )
    best = [
        v.get("best_model_path") for k, v in states.items() if k.startswith(("RecipeCheckpoint", "ModelCheckpoint"))
    ]
    if not best or not best[0] or not os.path.isfile(best[0]):
        raise ConfigError(
            f"--ckpt_path best: {last} records no best checkpoint that still exists",
            "set checkpoint.monitor, or pass a checkpoint path",
        )
    return best[0]


def last_checkpoint(dirpath: str) -> str:
    """What ``--ckpt_path last`` resumes: the newest ``last.ckpt`` or ``last-vN.ckpt`` (fit writes a versioned
    one beside an older run's) in ``dirpath``, as Lightning picks it. None is an error, not a fresh start
    as in Lightning: a user who asks to resume and gets a new run loses the run they meant."""
    names = [n for n in os.listdir(dirpath) if re.fullmatch(r"last(-v\d+)?\.ckpt", n)] if os.path.isdir(dirpath) else []
    if not names:
        raise ConfigError(
            f"--ckpt_path last: no last.ckpt in {dirpath}",
            "leave out --ckpt_path to fit afresh; to resume or evaluate a run, "
            "set trainer.default_root_dir (or checkpoint.dirpath) to its folder",
        )
    return max((os.path.join(dirpath, n) for n in names), key=os.path.getmtime)


def build_cli(args: list[str] | None = None, run: bool = True) -> RecipeCLI:
    """The CLI over any LightningModule / LightningDataModule named in the config (subclass mode)."""
    return RecipeCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "description": "Train, evaluate and predict with a recipe."},
        auto_configure_optimizers=False,
        args=args,
        run=run,
    )


def _nested_nulls(argv: list[str]) -> list[str]:
    """Rewrite ``--model.a.b null`` as ``--model '{"init_args": {"a": {"b": null}}}'``.

    jsonargparse 4.53 re-parses a nested argument of a subclass-mode group as the text ``--a.b=None``,
    which reads back as the string "None"; a dict for the whole group merges with the config and keeps
    the null. Other values take the ordinary path.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if not eq and i + 1 < len(argv):
            val = argv[i + 1]
        group, _, rest = key.removeprefix("--").partition(".")
        if key.startswith("--") and group in ("model", "data") and rest and val in ("null", "None", "~"):
            nested: object = None
            for part in reversed(rest.removeprefix("init_args.").split(".")):
                nested = {part: nested}
            out += [f"--{group}", json.dumps({"init_args": nested})]
            i += 1 if eq else 2
            continue
        out.append(arg)
        i += 1
    return out


def run_cli(argv: list[str], from_sys: bool = False) -> int:
    """Run LightningCLI on ``argv`` (``fit|validate|test|predict ...``); returns the exit code. Lightning's own
    refusals and a diverged loss are handled here; user errors and jsonargparse's reports of them go up to the
    command table (``recipes/__main__.py``), which turns every one into one line."""
    torch.set_float32_matmul_precision("high")  # TF32 on Ampere+ GPUs; a no-op on CPU
    quiet_third_party()
    try:
        fixed = _nested_nulls(argv)
        if from_sys:  # LightningCLI reads sys.argv itself (and warns when given both)
            sys.argv[1:] = fixed
        build_cli(None if from_sys else fixed)
    except MisconfigurationException as exc:
        print(format_error(exc), file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
