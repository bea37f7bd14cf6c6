"""Which optimizer of a composite takes each parameter.

The rule (Muon's authors', and Hugging Face's Muon routing): hidden weight matrices and conv filters go to
the main optimizer; embedding tables, the output head, biases, normalization weights and every other
parameter of fewer than two dimensions go to the fallback. The output head is the last module, in
registration order, that holds a weight of two or more dimensions. ``route`` (name prefix -> part) overrides
the rule; the longest matching prefix wins and ``""`` matches every parameter.
"""

from __future__ import annotations

from typing import Any, Iterator

from torch import nn

from recipes.modules.errors import ConfigError
from recipes.modules.optim.groups import embedding_param_names

__all__ = ["ParameterSubset", "output_head_names", "hidden_matrix_names", "route_parameters"]


class ParameterSubset(nn.Module):
    """A view of the named parameters of ``owner`` that ``names`` lists, for the optimizer factory.

    Names and submodules are the owner's, so the factory's rules (no decay for 1-D tensors,
    ``no_weight_decay()`` hooks, embedding weight decay) read exactly as they would on the whole model.
    """

    def __init__(self, owner: nn.Module, names: set[str]) -> None:
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # a view, not a child: not registered as a submodule
        self._names = set(names)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        for name, p in self._owner.named_parameters(prefix, recurse, remove_duplicate):
            if name in self._names:
                yield name, p

    def named_modules(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, nn.Module]]:
        return self._owner.named_modules(*args, **kwargs)


def output_head_names(model: nn.Module) -> set[str]:
    """The parameters of the last module (registration order) that holds a weight of ``ndim >= 2``."""
    head: set[str] = set()
    for prefix, module in model.named_modules():
        own = {f"{prefix}.{n}" if prefix else n: p for n, p in module.named_parameters(recurse=False)}
        if any(p.ndim >= 2 for p in own.values()):
            head = set(own)
    return head


def hidden_matrix_names(model: nn.Module) -> set[str]:
    """Trainable parameters of ``ndim >= 2`` that are neither embedding tables nor the output head."""
    other = embedding_param_names(model) | output_head_names(model)
    return {n for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and n not in other}


def _longest_prefix(name: str, prefixes: dict[str, str]) -> str | None:
    best = None
    for prefix in prefixes:
        if (prefix == "" or name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


def route_parameters(model: nn.Module, route: dict[str, str]) -> dict[str, str]:
    """Trainable parameter name -> ``main`` or ``fallback``, by the rule and then ``route``."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    unknown = sorted(p for p in route if p and not any(n == p or n.startswith(p + ".") for n in names))
    if unknown:
        raise ConfigError(
            f"route names {unknown} match no trainable parameter of {type(model).__name__}",
            "use name prefixes from model.named_parameters()",
        )
    hidden = hidden_matrix_names(model)
    out = {}
    for name in names:
        prefix = _longest_prefix(name, route)
        out[name] = route[prefix] if prefix is not None else ("main" if name in hidden else "fallback")
    return out
