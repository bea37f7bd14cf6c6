"""Every registry is the one ``Registry`` type with the one lookup rule: any case finds an entry, a near miss
suggests the closest names, and anything else lists the names (or says where to see them), naming the setting.

The registries are found by walking the package, so a new one is covered without editing this file."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import recipes
from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry


def _registries() -> dict[str, Registry]:
    found = {}
    for info in pkgutil.walk_packages(recipes.__path__, "recipes."):
        if ".benchmark" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            if isinstance(value, Registry):
                found.setdefault(id(value), (f"{info.name}.{attr}", value))
    return dict(found.values())


REGISTRIES = _registries()


def test_every_registry_is_found():
    names = {n.rsplit(".", 1)[1] for n in REGISTRIES}
    assert {"IMAGE_NETS", "SPEECH_NETS", "REC_NETS", "INITIALIZERS", "SCHEDULES", "NORMALIZERS", "CORPORA"} <= names
    assert "_REGISTRY" in names  # the optimizers


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_one_lookup_rule(name):
    registry = REGISTRIES[name]
    if name.endswith("optim.registry._REGISTRY"):
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
