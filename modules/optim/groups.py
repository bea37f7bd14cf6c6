"""Parameter groups by rule: which parameters decay, and each one's lr multiplier.

Rules, in the order they apply to every trainable parameter:

* weight decay: off for any parameter with ``ndim <= 1`` (biases, normalization scales and shifts,
  scalars) and for every name a ``no_weight_decay()`` method of the model or of any submodule
  returns, relative to that submodule (timm's hook); embedding
  tables (``nn.Embedding``/``nn.EmbeddingBag`` weights) take ``embedding_weight_decay`` when set.
* lr multipliers: ``lr_mult`` maps a submodule prefix (``"backbone"``) to a factor; the longest
  matching prefix wins.
* layer-wise lr decay: with ``layer_decay=d`` and ``layer_decay_root`` naming the stacked-layer
  container (an ``nn.ModuleList``/``nn.Sequential``, e.g. ``"backbone.encoder.layer"``), block ``i`` of
  ``n`` gets ``d ** (n - i)``; parameters registered before the stack (embeddings, stem) get ``d ** (n + 1)``
  and those after it (head) get 1.

Parameters with identical (lr multiplier, weight decay) share one group, so a model yields only a few.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from torch import nn

from recipes.modules.errors import ConfigError

__all__ = ["Grouping", "GroupRules", "ParamGroupSpec", "build_param_groups", "embedding_param_names", "no_decay_names"]

_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


GROUPING_ARGS = """
        decay_1d: also decay biases, normalization weights and other 1-D parameters (usually wrong).
        embedding_weight_decay: weight decay for embedding tables; None means weight_decay.
        lr_mult: submodule prefix -> lr multiplier, e.g. ``{backbone: 0.1}``.
        layer_decay: layer-wise lr decay factor in (0, 1]; None turns it off.
        layer_decay_root: dotted name of the stacked-layer container the decay counts over."""


@dataclass(frozen=True)
class Grouping:
    decay_1d: bool = False
    embedding_weight_decay: float | None = None
    lr_mult: dict[str, float] = field(default_factory=dict)
    layer_decay: float | None = None
    layer_decay_root: str | None = None

    def grouping(self) -> dict[str, Any]:
        """These settings by name (``OptimizerConfig`` holds them beside its optimizer's own)."""
        return {f.name: getattr(self, f.name) for f in fields(Grouping)}


Grouping.__doc__ = "How a model's parameters are split into optimizer groups.\n\n    Args:" + GROUPING_ARGS


@dataclass(frozen=True)
class GroupRules(Grouping):
    weight_decay: float = 0.0


GroupRules.__doc__ = (
    "The grouping rules of one optimizer part, with its resolved weight decay.\n\n    Args:"
    + GROUPING_ARGS
    + """
        weight_decay: weight decay for parameters with ``ndim >= 2``."""
)


@dataclass
class ParamGroupSpec:
    """One optimizer group before it becomes a dict: its parameters, names and settings."""

    name: str
    lr_scale: float
    weight_decay: float
    params: list[nn.Parameter] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def numel(self) -> int:
        return sum(p.numel() for p in self.params)


def embedding_param_names(model: nn.Module) -> set[str]:
    """Names of the weights of every ``nn.Embedding`` and ``nn.EmbeddingBag`` in ``model``."""
    return {
        f"{mod_name}.{p_name}" if mod_name else p_name
        for mod_name, mod in model.named_modules()
        if isinstance(mod, _EMBEDDINGS)
        for p_name, _ in mod.named_parameters(recurse=False)
    }


def no_decay_names(model: nn.Module) -> set[str]:
    """Names of the parameters the rule exempts from weight decay: ``ndim <= 1`` plus the model hook."""
    names = {n for n, p in model.named_parameters() if p.ndim <= 1}
    for prefix, module in model.named_modules():  # the hook may sit on any submodule (an inner network)
        hook = getattr(module, "no_weight_decay", None)
        if callable(hook):
            names |= {f"{prefix}.{n}" if prefix else n for n in hook()}
    return names


def _layer_scales(model: nn.Module, decay: float, root: str | None) -> dict[str, float]:
    if root is None:
        raise ConfigError(
            "layer_decay is set but layer_decay_root is not",
            "name the stacked-layer container, e.g. backbone.encoder.layer",
        )
    try:
        stack = model.get_submodule(root)
    except AttributeError:
        raise ConfigError(
            f"layer_decay_root {root!r} is not a submodule of {type(model).__name__}",
            "use a name from model.named_modules()",
        ) from None
    blocks = list(stack.children())
    if not blocks:
        raise ConfigError(
            f"layer_decay_root {root!r} has no child layers", "point it at an nn.ModuleList or nn.Sequential"
        )
    n = len(blocks)
    block_of = {}
    for i, block in enumerate(blocks):
        for p in block.parameters():
            block_of[id(p)] = i
    scales: dict[str, float] = {}
    seen_stack = False
    for name, p in model.named_parameters():
        if id(p) in block_of:
            seen_stack = True
            scales[name] = decay ** (n - block_of[id(p)])
        else:  # registration order tells the stem (before the stack) from the head (after it)
            scales[name] = 1.0 if seen_stack else decay ** (n + 1)
    return scales


def _prefix_mult(name: str, lr_mult: dict[str, float]) -> tuple[str, float]:
    best = ""
    for prefix in lr_mult:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best, lr_mult.get(best, 1.0)


def build_param_groups(model: nn.Module, rules: GroupRules) -> list[ParamGroupSpec]:
    """Split ``model``'s trainable parameters into groups by ``rules`` (see the module docstring)."""
    names = {n for n, _ in model.named_parameters()}
    unknown = [p for p in rules.lr_mult if not any(n == p or n.startswith(p + ".") for n in names)]
    if unknown:
        raise ConfigError(
            f"lr_mult names {unknown} match no parameter of {type(model).__name__}",
            "use submodule prefixes from model.named_parameters()",
        )
    no_decay = set() if rules.decay_1d else no_decay_names(model)
    embeddings = embedding_param_names(model) if rules.embedding_weight_decay is not None else set()
    layer = _layer_scales(model, rules.layer_decay, rules.layer_decay_root) if rules.layer_decay is not None else {}

    groups: dict[tuple[float, float], ParamGroupSpec] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in no_decay:
            wd, kind = 0.0, "no_decay"
        elif name in embeddings:
            wd, kind = float(rules.embedding_weight_decay), "embedding"
        else:
            wd, kind = rules.weight_decay, "decay"
        prefix, mult = _prefix_mult(name, rules.lr_mult)
        scale = mult * layer.get(name, 1.0)
        key = (scale, wd)
        if key not in groups:
            label = kind + (f"/{prefix}" if prefix else "") + (f"/x{scale:.3g}" if scale != 1.0 else "")
            groups[key] = ParamGroupSpec(label, scale, wd)
        groups[key].params.append(p)
        groups[key].names.append(name)
    return list(groups.values())


def describe_groups(groups: list[dict]) -> list[dict[str, object]]:
    """Rows (name, tensors, parameters, lr, weight decay) for logging the groups an optimizer holds."""
    return [
        {
            "group": g.get("name", str(i)),
            "tensors": len(g["params"]),
            "params": sum(p.numel() for p in g["params"]),
            "lr": g["lr"],
            "weight_decay": g.get("weight_decay", 0.0),
        }
        for i, g in enumerate(groups)
    ]


def to_torch_groups(specs: list[ParamGroupSpec], lr: float) -> list[dict]:
    """Torch param-group dicts: ``lr`` is the base lr times each group's scale; name and scale ride along for
    logging."""
    out = []
    for s in specs:
        out.append(
            {
                "params": s.params,
                "lr": lr * s.lr_scale,
                "weight_decay": s.weight_decay,
                "name": s.name,
                "lr_scale": s.lr_scale,
            }
        )
    return out
