"""Pretrained weights for the image networks: torchvision's ``weights=`` enums or a local checkpoint file.

``pretrained`` is one string:

* ``torchvision:<NAME>``: a member of the architecture's torchvision weights enum (``IMAGENET1K_V1``,
  ``DEFAULT``...), for networks built on a torchvision architecture (``resnet18``). It is read from
  torchvision's own cache (``$TORCH_HOME/hub/checkpoints``) and never downloaded at run time.
* a file: a recipes Lightning ``.ckpt`` (its ``state_dict``, keys under ``net.``) or a plain state_dict
  in ``.pt``/``.pth``/``.safetensors`` (keys of the network itself, of its inner torchvision model, or
  under a ``net.``/``module.``/``model.`` prefix; the reading that matches most tensors wins).

Every tensor whose name and shape match is copied; the rest keep their fresh initialization and are
counted in one log line (loaded / skipped for a shape mismatch / missing). A changed number of classes
therefore gives a new head; ``skip`` forces one. Modules whose tensors were all loaded are marked with
``mark_pretrained``, so ``apply_init`` never touches them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from recipes.modules.checkpoint_file import read_checkpoint, written_by
from recipes.modules.errors import ConfigError
from recipes.modules.init import mark_pretrained

__all__ = [
    "PretrainedSource",
    "LoadReport",
    "parse_pretrained",
    "read_state_dict",
    "load_image_weights",
    "backbone_prefixes",
    "torchvision_cache_path",
]

SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors")
PREFIXES = ("", "net.", "module.", "model.")
FILE_FIX = (
    f"give an existing checkpoint file ({', '.join(SUFFIXES)}) or torchvision:<WEIGHTS> for a torchvision architecture"
)


@dataclass(frozen=True)
class PretrainedSource:
    """A parsed ``pretrained`` string: torchvision weights (``kind="torchvision"``, ``name`` the enum member)
    or a file."""

    kind: str
    name: str


@dataclass
class LoadReport:
    """What ``load_image_weights`` did, tensor names by outcome."""

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the checkpoint with another shape, or forced new (head)
    missing: list[str] = field(default_factory=list)  # not in the checkpoint: left as initialized
    unused: list[str] = field(default_factory=list)  # in the checkpoint, not in the network

    def summary(self) -> str:
        def some(names: list[str]) -> str:
            return f" ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})" if names else ""

        return (
            f"pretrained {self.source}: loaded {len(self.loaded)} tensors, "
            f"skipped {len(self.skipped)}{some(self.skipped)}, "
            f"missing {len(self.missing)}{some(self.missing)}, unused {len(self.unused)}"
        )


def _torchvision_weights(net: nn.Module, name: str):
    from torchvision.models import get_model_weights

    arch = getattr(net, "torchvision_arch", None)
    if arch is None:
        raise ConfigError(
            f"torchvision:{name} needs a torchvision architecture, and {type(net).__name__} is not one",
            f"use model.net resnet18, or a local checkpoint file ({', '.join(SUFFIXES)})",
        )
    enum = get_model_weights(arch)
    try:
        return enum[name]
    except KeyError:
        raise ConfigError(
            f"torchvision has no {enum.__name__}.{name}",
            f"choose one of {', '.join(['DEFAULT', *(w.name for w in enum)])}",
        ) from None


def parse_pretrained(source: str, net: nn.Module) -> PretrainedSource:
    """Check the form of ``source`` without reading anything (the file may be gone when a fine-tuned model is
    reloaded)."""
    if source.startswith("torchvision:"):
        weights = _torchvision_weights(net, source.split(":", 1)[1])
        return PretrainedSource("torchvision", weights.name)
    if Path(source).suffix.lower() not in SUFFIXES:
        raise ConfigError(
            f"pretrained {source!r} is neither torchvision:<WEIGHTS> nor a {'/'.join(SUFFIXES)} file", FILE_FIX
        )
    return PretrainedSource("file", source)


def torchvision_cache_path(net: nn.Module, name: str) -> Path:
    """Where torchvision keeps (or would download) the weights file: ``torch.hub.get_dir()/checkpoints``."""
    weights = _torchvision_weights(net, name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def read_state_dict(source: PretrainedSource, net: nn.Module) -> dict[str, Tensor]:
    """The tensors of ``source``: a torchvision weights file from the cache, or a local checkpoint."""
    return _read(source, net)[0]


def _read(source: PretrainedSource, net: nn.Module) -> tuple[dict[str, Tensor], str | None]:
    """``read_state_dict`` and the class that wrote the checkpoint, when it records one."""
    if source.kind == "torchvision":
        path = torchvision_cache_path(net, source.name)
        if not path.is_file():
            weights = _torchvision_weights(net, source.name)
            enum = type(weights).__name__
            raise ConfigError(
                f"torchvision weights {enum}.{weights.name} are not in torchvision's cache: no {path} "
                f"(TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}) and nothing is downloaded at run time",
                "where a network is reachable run python -c "
                f"'import torchvision; torchvision.models.{enum}.{weights.name}.get_state_dict()' "
                f"and copy {weights.url.rsplit('/', 1)[-1]} into {path.parent}, "
                "set TORCH_HOME to a folder whose hub/checkpoints holds it, or give a local checkpoint file",
            )
    else:
        path = Path(source.name).expanduser()
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.is_file():
            raise ConfigError(f"pretrained checkpoint {path} does not exist", FILE_FIX)
        try:
            obj = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ConfigError(
                f"pretrained checkpoint {path} is truncated or corrupt "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                f"replace it with an intact copy, or {FILE_FIX}",
            ) from None
    else:  # torch.load(weights_only=True), with one message for each way a file can fail
        obj = read_checkpoint(path, "pretrained checkpoint", FILE_FIX)
    writer = written_by(obj)
    if isinstance(obj.get("state_dict"), dict):  # a Lightning checkpoint
        obj = obj["state_dict"]
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise ConfigError(f"pretrained checkpoint {path} holds no state_dict of tensors", FILE_FIX)
    return state, writer


def _best_reading(net: nn.Module, state: dict[str, Tensor]) -> tuple[nn.Module, dict[str, Tensor]]:
    """The (target module, renamed state) pair under which most tensors match by name and shape."""
    targets = [net]
    root = getattr(net, "torchvision_root", None)
    if root:
        targets.append(net.get_submodule(root))
    best, best_score = (net, {}), (-1, -1)
    for target in targets:
        own = target.state_dict()
        for prefix in PREFIXES:
            renamed = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            score = (
                sum(k in own and own[k].shape == v.shape for k, v in renamed.items()),
                sum(k in own for k in renamed),
            )
            if score > best_score:
                best, best_score = (target, renamed), score
    return best


def load_image_weights(net: nn.Module, source: str, skip: tuple[str, ...] = ()) -> LoadReport:
    """Copy every tensor of ``source`` whose name and shape match into ``net`` (see the module docstring).

    ``skip`` names submodules of ``net`` (e.g. its head) that stay fresh even where shapes match.
    """
    parsed = parse_pretrained(source, net)
    state, writer = _read(parsed, net)
    target, state = _best_reading(net, state)
    prefix = "" if target is net else f"{getattr(net, 'torchvision_root')}."
    skipped_modules = tuple(s.removeprefix(prefix) for s in skip)
    report = LoadReport(source)
    take: dict[str, Tensor] = {}
    for name, tensor in target.state_dict().items():
        forced = any(name == s or name.startswith(s + ".") for s in skipped_modules)
        if name not in state:
            report.missing.append(prefix + name)
        elif forced or state[name].shape != tensor.shape:
            report.skipped.append(prefix + name)
        else:
            take[name] = state[name]
            report.loaded.append(prefix + name)
    own = set(target.state_dict())
    report.unused = [k for k in state if k not in own]
    if not take:
        whose = f" (a checkpoint of {writer})" if writer else ""
        raise ConfigError(
            f"pretrained checkpoint {source}{whose} matches no tensor of {type(net).__name__} ({report.summary()})",
            "give a checkpoint of the same network (model.net and model.net_kwargs as when it was trained)",
        )
    target.load_state_dict(take, strict=False)
    for mod_name, module in target.named_modules():
        names = [f"{mod_name}.{k}" if mod_name else k for k in module.state_dict()]
        if names and all(n in take for n in names):
            mark_pretrained(module)
    return report


def backbone_prefixes(module: nn.Module, head: str, prefix: str = "") -> list[str]:
    """Names of the smallest set of submodules and direct parameters that hold everything in
    ``module`` but ``head`` (a dotted submodule name, relative to ``module``)."""
    out = [f"{prefix}{name}" for name, _ in module.named_parameters(recurse=False)]
    for name, child in module.named_children():
        if name == head:
            continue
        if head.startswith(name + "."):
            out += backbone_prefixes(child, head.removeprefix(name + "."), f"{prefix}{name}.")
        elif any(True for _ in child.parameters()):
            out.append(f"{prefix}{name}")
    return out
