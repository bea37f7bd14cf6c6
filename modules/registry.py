"""The one registry type every name lookup uses: name -> entry, one lookup rule, the closest names on a miss.

Networks, initializers, schedules, optimizers, text normalizations and speech corpora are all a ``Registry``:
names are matched case-insensitively, and an unknown name is one ``ConfigError`` that suggests the closest
registered names (or lists them all when none is close) and names the setting to fix.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, TypeVar

from recipes.modules.errors import ConfigError, RecipeError

T = TypeVar("T")


class Registry(dict[str, T]):
    """A ``dict`` of lowercase names to entries with one lookup rule.

    Args:
        kind: what an entry is, for messages ("image network", "initializer").
        entries: ``(name, entry)`` pairs.
        setting: the config key that names an entry (``model.net``), said in the fix of an unknown name.
        also: other accepted forms, said when listing the names (``torchvision:<name>``).
        see: where to find the names, said instead of listing them (for long registries).
    """

    def __init__(
        self,
        kind: str,
        entries: Iterable[tuple[str, T]] = (),
        setting: str | None = None,
        also: str = "",
        see: str = "",
    ) -> None:
        super().__init__()
        self.kind, self.setting, self.also, self.see = kind, setting, also, see
        for name, entry in entries:
            self.add(name, entry)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` as ``name``; a name registered twice is a programming error."""
        key = name.lower()
        if key in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[key] = entry
        return entry

    def find(self, name: str) -> T | None:
        """The entry registered as ``name`` (any case), or None."""
        return self.get(str(name).lower())

    def lookup(self, name: str) -> T:
        """The entry registered as ``name`` (any case); otherwise one ConfigError with the closest names."""
        found = self.find(name)
        if found is None:
            raise self.unknown(name)
        return found

    def unknown(self, name: str, extra: str = "") -> ConfigError:
        """The error for an unknown ``name``: the closest registered names, else all of them."""
        close = difflib.get_close_matches(str(name).lower(), list(self), n=4, cutoff=0.5)
        if close:
            fix = f"did you mean {', '.join(close)}?"
        elif self.see:
            fix = f"see: {self.see}"
        else:
            fix = f"choose one of {', '.join(self)}"
        fix += f"; or {self.also}" if self.also else ""
        fix += f" ({self.setting})" if self.setting else ""
        return ConfigError(f"unknown {self.kind} {name!r}", fix + extra)


def construct(name: str, build: Callable[..., Any], setting: str = "model.net_kwargs", **kwargs: Any) -> Any:
    """``build(**kwargs)``, where a constructor's TypeError or ValueError (a wrong or bad argument from the
    config) becomes one ConfigError naming ``name`` and the ``setting`` to fix."""
    try:
        return build(**kwargs)
    except RecipeError:  # already one line with its fix
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name!r} rejected its arguments: {exc}", f"fix {setting}") from None
