"""The shipped configs (``configs/``, installed as ``recipes.configs``), found by name from any folder.

A name is the file's path under ``configs/`` without ``.yaml``: ``image_classification``,
``benchmark/small``. ``--config VALUE`` reads an existing file first, so a user's own copy (from
``recipes cp``) always wins; otherwise VALUE must be a shipped name. Nothing here imports Lightning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib.resources import files
from pathlib import Path

from recipes.modules.errors import ConfigError

__all__ = ["config_dir", "config_names", "purpose", "resolve_config", "config_id", "copy_config", "resolve_config_args"]


def config_dir() -> Path:
    """The folder of the shipped YAML files (the checkout's ``configs/`` in an editable install)."""
    return Path(str(files("recipes.configs")))


def config_names() -> list[str]:
    """Every shipped config's name, sorted (task configs, then ``benchmark/...``)."""
    root = config_dir()
    return sorted(
        (p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml")), key=lambda n: ("/" in n, n)
    )


def purpose(path: str | os.PathLike) -> str:
    """A config's one-line purpose: the first line of its opening comment."""
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def _names_fix() -> str:
    return (
        "give an existing YAML file or one of the shipped names: "
        + ", ".join(config_names())
        + " (recipes list configs)"
    )


def _shipped(value: str) -> Path | None:
    """The shipped config a bare name means (``regression``, ``regression.yaml``, ``configs/regression``,
    ``benchmark/small``); None for anything written as a path (``./x``, ``/x``, ``~/x``, ``../x``)."""
    if value.startswith(("/", "~", "./", "../")) or ".." in Path(value).parts:
        return None
    name = value.removeprefix("configs/").removesuffix(".yaml").removesuffix(".yml")
    shipped = config_dir() / f"{name}.yaml"
    return shipped if shipped.is_file() else None


def resolve_config(value: str, key: str = "--config", base: str | os.PathLike | None = None) -> Path:
    """``value`` as a file: an existing path (relative to ``base`` when given, else the working folder),
    else the shipped config of that bare name. Neither is one error that lists the names."""
    given = Path(value).expanduser()
    path = given if given.is_absolute() or base is None else Path(base) / given
    try:
        if path.is_file():
            return path.absolute()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigError(f"{key} {value[:80]}: not a usable path ({exc.strerror})", _names_fix()) from None
    shipped = _shipped(value)
    if shipped is not None:
        return shipped
    where = f" (relative to {base})" if base is not None and not given.is_absolute() else ""
    raise ConfigError(f"{key} {value}: no such file{where} and no shipped config of that name", _names_fix())


def config_id(path: str | os.PathLike) -> str:
    """What a benchmark run's key records for its task config, independent of where the file lives: a shipped
    config as ``configs/<name>.yaml`` (the form suites used in a checkout, so older results files still
    resume), any other file by its content (``sha256:<16 hex>``)."""
    path = Path(path).resolve()
    root = config_dir().resolve()
    if path.is_relative_to(root):
        return "configs/" + path.relative_to(root).as_posix()
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def copy_config(name: str, dest: str | os.PathLike) -> Path:
    """Copy the shipped config ``name`` to ``dest`` (a file, or an existing folder to put ``<name>.yaml`` in);
    an existing file is never overwritten."""
    src = _shipped(name)
    if src is None:
        raise ConfigError(
            f"cp: no shipped config {name!r}", "use one of: " + ", ".join(config_names()) + " (recipes list configs)"
        )
    target = Path(dest).expanduser()
    if target.is_dir():
        target = target / src.name
    elif str(dest).endswith(("/", os.sep)):
        raise ConfigError(f"cp: folder {dest} does not exist", "create it first, or give a file name")
    if target.exists():
        raise ConfigError(f"cp: {target} already exists", "give another destination, or delete it first")
    if not target.parent.is_dir():
        raise ConfigError(f"cp: folder {target.parent} does not exist", "create it first, or give an existing folder")
    try:
        shutil.copyfile(src, target)
    except OSError as exc:
        raise ConfigError(
            f"cp: cannot write {target} ({exc.strerror})", "give a destination you can write to"
        ) from None
    return target


def _inline(value: str) -> bool:
    """Whether a ``--config`` value is the YAML itself (jsonargparse takes a mapping as well as a path)."""
    import yaml

    try:
        return isinstance(yaml.safe_load(value), dict)
    except yaml.YAMLError:
        return False


def resolve_config_args(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config NAME`` (or ``-c``, ``--config=NAME``) replaced by the file it names."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if key in ("--config", "-c") and (eq or i + 1 < len(argv)):
            if not eq:
                i += 1
                val = argv[i]
            out += [key, val if _inline(val) else str(resolve_config(val, "--config"))]
        else:
            out.append(arg)
        i += 1
    return out
