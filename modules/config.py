"""Config dataclasses in and out of checkpoints: stored as plain dicts, rebuilt as dataclasses.

A task module's ``__init__`` rebuilds each dataclass argument with ``as_config`` (its argument may be an
instance, a dict from YAML or a checkpoint, or None) and stores its arguments with
``save_config_hparams(self, name=config, ...)``: the configs go into ``hparams`` as plain dicts, so a
checkpoint loads with ``torch.load(weights_only=True)`` and rebuilds the same model.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields, is_dataclass
from typing import Any, TypeVar

from recipes.modules.errors import ConfigError

__all__ = ["as_config", "plain", "save_config_hparams"]

T = TypeVar("T")


def as_config(cls: type[T], value: T | dict[str, Any] | None) -> T:
    """``value`` as a ``cls`` instance: a dict (from a checkpoint or YAML) is validated field by field."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"{cls.__name__} takes no key {', '.join(unknown)}", f"valid keys: {', '.join(sorted(known))}"
            )
        return cls(**value)
    raise ConfigError(f"expected {cls.__name__} settings, got {type(value).__name__}", "give a mapping of its keys")


def plain(value: Any) -> Any:
    """A dataclass as a dict of plain values (safe for ``torch.load(weights_only=True)``)."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def save_config_hparams(module: Any, ignore: list[str] | None = None, frame: Any = None, **configs: Any) -> None:
    """Store the caller's constructor arguments as ``module.hparams`` (Lightning's ``save_hyperparameters``),
    with each of ``configs`` (argument name -> dataclass or None) as plain values.

    Every stored value must then be plain (numbers, strings, lists, dicts): anything else could not be
    read back from a checkpoint with ``weights_only=True``, and is named in a TypeError here, at
    construction, rather than when a checkpoint fails to load. ``frame``: the constructor's frame, when a helper
    it called stores them (default: the caller's).
    """
    frame = frame or inspect.currentframe().f_back
    module.save_hyperparameters(ignore=ignore, frame=frame)
    hparams = {**module.hparams, **{name: plain(cfg) for name, cfg in configs.items()}}
    bad = sorted(k for k, v in hparams.items() if not _is_plain(v))
    if bad:
        raise TypeError(
            f"{type(module).__name__} hyperparameters {', '.join(bad)} are not plain values; pass dataclass "
            "configs to save_config_hparams, and modules or tensors in ignore"
        )
    module.save_hyperparameters(hparams, ignore=ignore, frame=frame)
