"""The optimizer registry: a name for every optimizer the factory can build.

Entries are data (frozen dataclasses), and the built-in collections are registered on the first lookup or
listing, so importing this module stays cheap: every optimizer ``torch.optim`` ships, schedule-free
AdamW/SGD/RAdam from ``schedulefree``, and the ``pytorch-optimizer`` collection (Lion, LAMB, Adan, Prodigy,
SOAP, ...) when the optional extra is installed. Any ``torch.optim.Optimizer`` subclass is also accepted by
dotted path.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry

__all__ = ["OptimizerInfo", "get_optimizer_info", "list_optimizers", "register_optimizer"]


@dataclass(frozen=True)
class OptimizerInfo:
    """One registered optimizer.

    ``loader`` returns the class lazily so listing names never imports optional packages' heavy code. The
    other fields say what the factory must give the optimizer beyond parameter groups and an lr:

    * ``schedule_free``: it replaces the lr schedule and needs train/eval mode switches.
    * ``matrices_only``: it takes hidden weight matrices only (Muon's family); the rest of the model goes to
      a fallback optimizer (``OptimizerConfig.fallback``). ``exact_2d``: it takes exactly 2-D tensors, so
      conv filters reach it as 2-D views. ``group_flags``: keys every one of its param groups must carry.
    * ``fills``: constructor argument -> what the run knows (``total_steps``, ``train_size``), filled in.
    * ``takes_model``: its constructor takes the model itself instead of parameter groups.
    * ``create_graph``: it reads Hessian-vector products, so the backward pass keeps its graph.
    * ``closure``: its step re-evaluates the loss through the closure (a line search, sharpness-aware minimization).
    * ``sparse_only``: it takes sparse gradients only (embedding tables built with ``sparse=True``).
    * ``distributed_only``: it needs a torch.distributed process group (a multi-device run).
    * ``group_by_shape``: each of its param groups must hold tensors of one shape (its collectives gather them).
    * ``contiguous_only``: it reshapes parameters with ``.view``, so non-contiguous ones (channels-last conv
      weights: ``model.channels_last``) cannot reach it.
    * ``first_update``: the optimizer step that first changes the weights (AdaShift waits for its gradient
      window, RAdam's rectification for its variance estimate).
    * ``lr_arg``: the constructor argument that takes the lr (AliG's ``max_lr``: it computes its own step size
      below that cap, so the schedule does not scale it).
    * ``presets``: constructor arguments the factory passes unless the user sets them (a known-bad default).
    * ``unusable``: why the factory cannot build it (shown by ``list optimizers``; choosing it is an error at
      parse time), and ``instead``: what to use.
    """

    name: str
    loader: Callable[[], type[torch.optim.Optimizer]]
    description: str
    source: str
    schedule_free: bool = False
    matrices_only: bool = False
    exact_2d: bool = False
    group_flags: tuple[tuple[str, Any], ...] = ()
    fills: tuple[tuple[str, str], ...] = ()
    takes_model: bool = False
    create_graph: bool = False
    closure: bool = False
    sparse_only: bool = False
    distributed_only: bool = False
    group_by_shape: bool = False
    contiguous_only: bool = False
    presets: tuple[tuple[str, Any], ...] = ()
    first_update: int = 1
    lr_arg: str = "lr"
    unusable: str | None = None
    instead: str = ""

    @property
    def cls(self) -> type[torch.optim.Optimizer]:
        return self.loader()

    @property
    def notes(self) -> list[str]:
        """What ``list optimizers`` says about this entry beyond its description."""
        if self.unusable:
            return [f"NOT USABLE: {self.unusable} ({self.instead})" if self.instead else f"NOT USABLE: {self.unusable}"]
        out = [
            "hidden matrices only: the rest goes to model.optimizer.fallback (AdamW by default)"
        ] * self.matrices_only
        out += [f"{arg} filled from the run's {fact}" for arg, fact in self.fills]
        out += ["backward keeps its graph (Hessian-vector products)"] * self.create_graph
        out += ["built over the model itself"] * self.takes_model
        out += ["re-evaluates the loss through the closure inside its step"] * self.closure
        out += ["sparse gradients only: model.embedding_optimizer with model.sparse_embeddings"] * self.sparse_only
        out += ["multi-device runs only (a torch.distributed process group)"] * self.distributed_only
        out += ["contiguous parameters only: not with model.channels_last"] * self.contiguous_only
        out += [f"{arg}={value!r} unless set" for arg, value in self.presets]
        out += [f"first changes the weights at step {self.first_update}"] * (self.first_update > 1)
        out += [f"lr is its {self.lr_arg} (it sets its own step size below it)"] * (self.lr_arg != "lr")
        return out


_REGISTRY: Registry[OptimizerInfo] = Registry(
    "optimizer", setting="model.optimizer.name", see="python -m recipes list optimizers"
)
_EXCLUDED = {"Optimizer", "LBFGS"}  # LBFGS: one param group only and a closure-driven line search.


def register_optimizer(info: OptimizerInfo, overwrite: bool = False) -> None:
    """Add ``info`` under its lowercase name; refuses to shadow an entry unless ``overwrite``."""
    key = info.name.lower()
    _registry()
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"optimizer {key!r} is already registered (from {_REGISTRY[key].source})")
    _REGISTRY[key] = info


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else ""


def _const(cls: type) -> Callable[[], type]:
    return lambda: cls


def _register_torch() -> None:
    for attr in torch.optim.__all__:
        cls = getattr(torch.optim, attr)
        if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer) and attr not in _EXCLUDED:
            name = "sparse_adam" if attr == "SparseAdam" else attr.lower()
            register_optimizer(OptimizerInfo(name, _const(cls), _first_line(cls), "torch.optim"))


def _register_schedulefree() -> None:
    try:
        import schedulefree
    except ImportError:  # pragma: no cover - a core dependency, but keep the registry importable
        return
    for name, attr in [
        ("adamw_schedulefree", "AdamWScheduleFree"),
        ("sgd_schedulefree", "SGDScheduleFree"),
        ("radam_schedulefree", "RAdamScheduleFree"),
    ]:
        cls = getattr(schedulefree, attr)
        desc = f"Schedule-free {attr.removesuffix('ScheduleFree')} (Defazio et al., 2024); needs no lr schedule"
        register_optimizer(OptimizerInfo(name, _const(cls), desc, "schedulefree", schedule_free=True))


def _register_pytorch_optimizer() -> None:
    try:
        import pytorch_optimizer
    except ImportError:
        return
    for name in pytorch_optimizer.get_supported_optimizers():
        key = name.lower()
        if key in _REGISTRY:  # torch's own implementation wins; the other stays reachable by dotted path
            continue

        def loader(n: str = name) -> type[torch.optim.Optimizer]:
            return pytorch_optimizer.load_optimizer(n)

        cls = pytorch_optimizer.load_optimizer(name)
        register_optimizer(OptimizerInfo(key, loader, _first_line(cls), "pytorch_optimizer"))


def _load_dotted(path: str) -> type[torch.optim.Optimizer]:
    module_name, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot import optimizer class {path!r} ({exc})",
            "give a registered name (python -m recipes list optimizers) or an importable dotted path",
        ) from None
    if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)):
        raise ConfigError(f"{path!r} is not a torch.optim.Optimizer subclass", "point to an Optimizer class")
    return obj


def get_optimizer_info(name: str) -> OptimizerInfo:
    """Look ``name`` up (case-insensitive), or import it as a dotted path such as ``mypkg.optim.Foo``."""
    key = name.lower()
    if key in _registry():
        return _REGISTRY[key]
    if "." in name:
        cls = _load_dotted(name)
        return OptimizerInfo(name, _const(cls), _first_line(cls), cls.__module__)
    missing_extra = "" if "lion" in _REGISTRY else " (install recipes[optimizers] for Lion, LAMB, Adan, Prodigy...)"
    raise _REGISTRY.unknown(name, missing_extra)


def list_optimizers(filter: str = "") -> list[OptimizerInfo]:
    """All registered optimizers whose name contains ``filter``, sorted by name."""
    return [info for key, info in sorted(_registry().items()) if filter.lower() in key]


# exact_2d: they flatten conv filters with .view themselves, which channels-last filters do not allow
_MUON = {"matrices_only": True, "exact_2d": True, "group_flags": (("use_muon", True),)}
# What the built-in optimizers need beyond groups and an lr (see OptimizerInfo), found by building every
# registered name on every task's default model (tests/test_registry_tasks.py).
REQUIREMENTS: dict[str, dict[str, Any]] = {
    "muon": {"matrices_only": True, "exact_2d": True},
    "spectralsphere": {"matrices_only": True, "exact_2d": True},
    **{name: _MUON for name in ("adamuon", "adago", "muonclip", "normuon")},
    **{name: {"create_graph": True} for name in ("adahessian", "sophiah")},
    "adammini": {"takes_model": True},
    # its own warmup and warm-down would stack on the factory's schedule
    "ranger21": {"fills": (("num_iterations", "total_steps"),), "presets": (("disable_lr_scheduler", True),)},
    "alig": {"closure": True, "lr_arg": "max_lr"},
    # its inner AdamW takes weight_decay through **kwargs (default 0.01, on every parameter): none unless set
    "magma": {"presets": (("weight_decay", 0.0),)},
    # a low-rank Fisher approximation per weight matrix; its eigendecomposition fails on AutoRec's embeddings
    "alice": {"matrices_only": True},
    "sparse_adam": {"sparse_only": True},
    "lbfgs": {"closure": True, "contiguous_only": True},  # a line search: up to 20 closure evaluations a step
    # they reshape every parameter with .view (channels-last conv weights cannot be viewed so)
    **{name: {"contiguous_only": True} for name in ("adamp", "sgdp", "nero", "swats")},
    "adashift": {"first_update": 11},  # keep_num (10) gradients first
    **{name: {"first_update": 5} for name in ("radam_schedulefree", "schedulefreeradam")},
    **{
        name: {
            "unusable": "it updates the weights inside its own fused_backward(loss, lr), in place of loss.backward()"
            " and optimizer.step(), which Lightning's loop calls",
            "instead": "use adafactor (also keeps little state) or adamw",
        }
        for name in ("lomo", "adalomo")
    },
    "lorarite": {
        "unusable": "it preconditions LoRA factor pairs (lora_A, lora_B in alternating order) and skips every other"
        " parameter, so the tasks' models would not train",
        "instead": "use adamw",
    },
    "bsam": {
        "unusable": "its step perturbs the weights with noise from state it builds out of gradients that must exist"
        " before step(closure) is called, while Lightning's closure computes the first gradients inside the step"
        " (KeyError 's'); its batched path also fails with more than one param group",
        "instead": "use adamw, or sam-style training outside Lightning's automatic loop",
    },
    "distributedmuon": {**_MUON, "distributed_only": True, "group_by_shape": True},
    "demo": {
        "unusable": "DeMo all-gathers compressed momenta (it needs a torch.distributed process group) and splits"
        " each weight into DCT chunks of compression_chunk (64) elements a side, which the tasks' weights do not"
        " divide (einops fails)",
        "instead": "use adamw; under DDP, distributedmuon shards Muon's work over the processes",
    },
}

_BUILTINS_LOADED = False


def _registry() -> dict[str, OptimizerInfo]:
    """The registry, with the built-in collections added on first use: importing this module (the factory,
    ``recipes list schedulers``) stays free of pytorch_optimizer's import (about a second)."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        _register_torch()
        _register_schedulefree()
        _register_pytorch_optimizer()
        for name, needs in REQUIREMENTS.items():
            if name in _REGISTRY:
                _REGISTRY[name] = replace(_REGISTRY[name], **needs)
    return _REGISTRY
