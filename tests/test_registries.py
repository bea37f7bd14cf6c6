"""Every registry is the one ``Registry`` type with the one lookup rule: any case finds an entry, a near miss
suggests the closest names, and anything else lists the names (or says where to see them), naming the setting.

The registries are found by walking the package, so a new one is covered without editing this file."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry


def _registries() -> dict[str, Registry]:
    """Every Registry object in the package's modules, by its kind."""
    import recipes.data
    import recipes.modules

    found: dict[str, Registry] = {}
    for package in (recipes, recipes.modules, recipes.data):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".benchmark" in info.name or info.name.endswith("__main__"):
                continue
            for value in vars(importlib.import_module(info.name)).values():
                if isinstance(value, Registry):
                    found[value.kind] = value
    return found


REGISTRIES = _registries()


def test_every_registry_is_found():
    kinds = {"image network", "speech network", "recommendation network", "initializer", "schedule", "optimizer"}
    assert kinds | {"normalization", "corpus", "model library"} <= set(REGISTRIES)


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_one_lookup_rule(name):
    registry = REGISTRIES[name]
    if name == "optimizer":
        from recipes.modules.optim.registry import get_optimizer_info

        get_optimizer_info("adamw")  # the optimizer registry fills itself on first use
    assert len(registry) > 0 and all(key == key.lower() for key in registry)
    first = next(iter(registry))
    assert registry.lookup(first.upper()) is registry[first]
    near = first[:-1] + ("x" if first[-1] != "x" else "y")
    with pytest.raises(ConfigError, match=f"unknown {registry.kind} '{near}'.*did you mean .*{first}"):
        registry.lookup(near)
    with pytest.raises(ConfigError) as info:
        registry.lookup("qqqqqqqqqqqq")
    message = str(info.value)
    assert ("see: " in message) if registry.see else all(key in message for key in registry)
    assert registry.setting is None or registry.setting in message


def test_a_name_registered_twice_is_refused():
    registry = Registry("thing", [("a", 1)])
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("A", 2)
