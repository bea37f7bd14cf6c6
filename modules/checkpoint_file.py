"""Checkpoint files the user names: read safely, and checked against the model before Lightning loads them.

``read_checkpoint`` is the one place a user's checkpoint is unpickled: ``torch.load(weights_only=True)``
on the CPU, reading every record, so damage anywhere in the file shows here and not in Lightning's own
load (which follows once this copy is dropped). Each way it can fail is one ConfigError naming the file:
it does not exist, is a folder, cannot be read, is truncated or corrupt, or was refused as unsafe: a
pickle that needs anything beyond tensors and plain containers is reported and never loaded another way.

``check_compatible`` compares a checkpoint with a freshly built LightningModule: the class that wrote
it (``hyper_parameters["_class_path"]``, which LightningCLI records) and every tensor's name and shape,
so another task's or another network's checkpoint fails with the first mismatching tensors and the
settings that differ, instead of a traceback from ``load_state_dict``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recipes.modules.errors import CheckpointError

__all__ = ["read_checkpoint", "written_by", "check_class", "config_class", "check_compatible", "UNSAFE_FIX"]

UNSAFE_FIX = (
    "use a checkpoint written by python -m recipes fit; a file from elsewhere must hold only tensors and plain "
    "containers (where you trust its source, load it yourself and torch.save just its state_dict)"
)
_OPCODES = {op.code: op.name for op in pickletools.opcodes}
# A legacy (non-zip) torch.save file opens with torch's magic number pickled as a 10-byte LONG1.
_LEGACY_MAGIC = b"\x8a\x0a" + torch.serialization.MAGIC_NUMBER.to_bytes(10, "little")


def _refusal(message: str) -> str | None:
    """Why torch's weights-only unpickler refused a well-formed pickle, or None when the bytes are no
    valid pickle at all (random bytes also surface as an UnpicklingError there)."""
    if m := re.search(r"GLOBAL ([\w.]+)", message):
        return f"it needs {m[1]}, which torch.load(weights_only=True) does not allow"
    if m := re.search(r"Unsupported operand (\d+)", message):
        code = chr(int(m[1]))
        return (
            f"it uses the pickle opcode {_OPCODES[code]}, which torch.load(weights_only=True) does not allow"
            if code in _OPCODES
            else None
        )
    if m := re.search(
        r"(Can only [^\n]*?|Only persistent_load [^\n]*?|unsupported persistent id[^\n]*?)(?:\.?\s*$|\.\s)",
        message,
        re.M,
    ):
        return m[1].rstrip(".")
    return None


def _corrupt_reason(head: bytes, zipped: bool, exc: BaseException | None) -> str:
    if not head:
        return "the file is empty"
    if head.startswith(b"PK") and not zipped:
        return "a zip archive without its central directory: cut short while being written or copied"
    if exc is None:
        return (
            f"not a torch.save file: it starts with {head[:4].hex(' ')}, "
            "neither a zip archive nor torch's legacy format"
        )
    if isinstance(exc, EOFError):
        return "the data ends early (EOFError)"
    text = str(exc)
    if m := re.search(r"Unsupported operand (\d+)", text):
        return f"byte {int(m[1]):#04x} where a pickle opcode should be: not a torch.save file"
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
    lines = [line.strip().removeprefix("WeightsUnpickler error:").strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(boilerplate)]
    return f"{type(exc).__name__}: {lines[0][:120]}" if lines else type(exc).__name__


def read_checkpoint(
    path: str | os.PathLike, what: str = "--ckpt_path", fix: str = "pass an existing checkpoint file"
) -> dict[str, Any]:
    """The unpickled content of the checkpoint at ``path`` (a dict), loaded with ``weights_only=True``.

    ``what`` names the argument in messages (``--ckpt_path``, ``pretrained checkpoint``); ``fix`` is the
    fix for a file that is missing or not a checkpoint.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"{what} {p} does not exist", fix)
    if p.is_dir():
        inside = sorted(p.glob("*.ckpt"))
        raise CheckpointError(
            f"{what} {p} is a folder, not a checkpoint file", f"pass a file in it, e.g. {inside[-1]}" if inside else fix
        )
    try:
        with open(p, "rb") as fh:
            head = fh.read(32)
    except OSError as exc:
        raise CheckpointError(
            f"cannot read {what} {p} ({exc.strerror or exc})", "check the file's permissions"
        ) from None
    zipped = zipfile.is_zipfile(p)
    if (
        not zipped and _LEGACY_MAGIC not in head
    ):  # garbage must not reach the unpickler, whose refusals would read as "unsafe"
        raise CheckpointError(
            f"{what} {p} is truncated or corrupt ({_corrupt_reason(head, zipped, None)})",
            f"replace it with an intact copy, or {fix}",
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refusal = _refusal(str(exc))
        if refusal is not None:
            raise CheckpointError(f"{what} {p} was refused as unsafe and not loaded: {refusal}", UNSAFE_FIX) from None
        raise CheckpointError(
            f"{what} {p} is truncated or corrupt ({_corrupt_reason(head, zipped, exc)})",
            f"replace it with an intact copy, or {fix}",
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails anywhere in zip, pickle or storage reading
        raise CheckpointError(
            f"{what} {p} is truncated or corrupt ({_corrupt_reason(head, zipped, exc)})",
            f"replace it with an intact copy, or {fix}",
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} {p} holds a {type(obj).__name__}, not a checkpoint", fix)
    return obj


def written_by(ckpt: dict[str, Any]) -> str | None:
    """The class path of the LightningModule that wrote ``ckpt``, when LightningCLI recorded it."""
    hparams = ckpt.get("hyper_parameters")
    name = hparams.get("_class_path") if isinstance(hparams, dict) else None
    return name if isinstance(name, str) else None


def config_class(class_path: str) -> type | None:
    """The class the config names (the config's own path, trusted: a path read from a checkpoint is compared as
    text and never imported)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return cls if isinstance(cls, type) else None


def _canonical(class_path: str) -> str:
    """``module.Name`` where the class is defined, for a path that may name a re-export."""
    cls = config_class(class_path)
    return f"{cls.__module__}.{cls.__qualname__}" if cls is not None else class_path


def check_class(
    ckpt: dict[str, Any], class_path: str | None, path: str | os.PathLike, what: str = "--ckpt_path"
) -> None:
    """Fail when ``ckpt`` was written by another LightningModule class than ``class_path`` (the config's)."""
    written = written_by(ckpt)
    if written and class_path and written not in (class_path, _canonical(class_path)):
        # A class names the paths it was written under before (``supersedes``): None for the same class
        # moved (its checkpoints load), else the fix for checkpoints of the class it replaced.
        superseded = getattr(config_class(class_path), "supersedes", {})
        if written in superseded:
            if superseded[written] is None:
                return
            raise CheckpointError(f"{what} {path} is a checkpoint of {written}", superseded[written])
        raise CheckpointError(
            f"{what} {path} is a checkpoint of {written}, and the config builds {class_path}",
            f"pass the config it was trained with (model.class_path {written}), "
            f"or a checkpoint of {class_path.rpartition('.')[2]}",
        )


def _shape(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def _some(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (RuntimeError, TypeError, ValueError):  # tensors and arrays compare elementwise: not a setting to name
        return False


def _differing_settings(ckpt: dict[str, Any], module: nn.Module, n: int = 4) -> list[str]:
    """``key=checkpoint value`` for the hyperparameters that differ from ``module``'s, plain values first."""
    theirs, ours = ckpt.get("hyper_parameters"), getattr(module, "hparams", None)
    if not isinstance(theirs, dict) or ours is None:
        return []
    keys = [k for k in theirs if not k.startswith("_") and k in ours and _differs(theirs[k], ours[k])]
    keys.sort(key=lambda k: isinstance(theirs[k], (dict, list, tuple)))
    return [f"{k}={theirs[k]!r}" for k in keys[:n]]


def _takes_pretrained_files(module: nn.Module) -> bool:
    """Whether ``module`` can start from another checkpoint's matching tensors (``model.pretrained`` FILE)."""
    return callable(getattr(module, "load_pretrained_weights", None))


def check_compatible(
    ckpt: dict[str, Any], module: nn.Module, path: str | os.PathLike, what: str = "--ckpt_path", strict: bool = True
) -> None:
    """Fail unless ``ckpt`` is a Lightning checkpoint that ``module.load_state_dict`` takes as it is.

    With ``strict`` (Lightning's default, and always when resuming a fit) every tensor must be there
    under the same name; without it only the shapes of the common names must agree.
    """
    cls = type(module)
    class_path = f"{cls.__module__}.{cls.__qualname__}"
    check_class(ckpt, class_path, path, what)
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        fix = "pass a .ckpt written by python -m recipes fit"
        if _takes_pretrained_files(module):
            fix += "; a plain state_dict can start a new fit through model.pretrained"
        raise CheckpointError(f"{what} {path} is not a Lightning checkpoint (it has no state_dict)", fix)
    own = module.state_dict()
    shapes = [
        f"{k} is {list(_shape(state[k]) or [])} in the checkpoint and {list(_shape(v) or [])} in the model"
        for k, v in own.items()
        if k in state and _shape(state[k]) != _shape(v)
    ]
    missing = [k for k in own if k not in state] if strict else []
    unexpected = [k for k in state if k not in own] if strict else []
    if not (shapes or missing or unexpected):
        return
    parts = (
        ([f"{len(shapes)} tensors differ in shape ({_some(shapes, 2)})"] if shapes else [])
        + ([f"{len(missing)} of the model's tensors are missing ({_some(missing)})"] if missing else [])
        + ([f"{len(unexpected)} of the checkpoint's are not the model's ({_some(unexpected)})"] if unexpected else [])
    )
    settings = _differing_settings(ckpt, module)
    fix = (
        f"build the model as it was trained ({', '.join(settings)} in the checkpoint)"
        if settings
        else "build the model as it was trained (the same model and data settings)"
    )
    if _takes_pretrained_files(module):
        fix += ", or start a new fit from its matching tensors with --model.pretrained"
    raise CheckpointError(f"{what} {path} does not fit {cls.__name__}: " + "; ".join(parts), fix)
