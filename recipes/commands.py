"""``recipes list`` and ``recipes cp``: what is registered and shipped, and a copy of a config to edit.

Neither imports Lightning: ``list configs`` reads the YAML files' opening comments, and ``list
optimizers|initializers|schedulers`` imports only the registry it prints.
"""

from __future__ import annotations

from recipes.config_files import config_dir, config_names, copy_config, purpose
from recipes.modules.errors import ConfigError

__all__ = ["list_command", "cp_command"]

KINDS = ("configs", "optimizers", "initializers", "schedulers")
LIST_USAGE = "use: recipes list " + "|".join(KINDS)


def _rows(kind: str) -> list[tuple[str, str]]:
    if kind == "configs":
        return [(name, purpose(config_dir() / f"{name}.yaml")) for name in config_names()]
    if kind == "optimizers":
        from recipes.modules.optim.registry import list_optimizers

        return [
            (i.name, f"{i.description} [{i.source}]" + "".join(f"; {n}" for n in i.notes)) for i in list_optimizers()
        ]
    if kind == "initializers":
        from recipes.modules.init import INITIALIZERS

        return [(i.name, i.description) for i in INITIALIZERS.values()]
    if kind == "schedulers":
        from recipes.modules.optim.schedules import SCHEDULES

        return [(s.name, s.description) for s in SCHEDULES.values()]
    raise ConfigError(f"cannot list {kind!r}", LIST_USAGE)


def list_command(args: list[str]) -> int:
    """``recipes list configs|optimizers|initializers|schedulers``: every name and what it is."""
    if args in (["-h"], ["--help"]):
        print(LIST_USAGE.removeprefix("use: "))
        return 0
    if len(args) != 1:
        raise ConfigError("list takes one argument", LIST_USAGE)
    rows = _rows(args[0])
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{'shipped' if args[0] == 'configs' else 'registered'} {args[0]}", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    for name, desc in rows:
        table.add_row(name, desc)
    Console(width=160).print(table)
    return 0


CP_USAGE = "use: recipes cp NAME DEST (NAME from recipes list configs; DEST a file or an existing folder)"


def cp_command(args: list[str]) -> int:
    """``recipes cp NAME DEST``: copy a shipped config for editing (as torchtune's ``tune cp``)."""
    if args and args[0] in ("-h", "--help"):
        print(CP_USAGE.removeprefix("use: "))
        return 0
    if len(args) != 2:
        raise ConfigError("cp takes a config name and a destination", CP_USAGE)
    target = copy_config(args[0], args[1])
    print(f"copied {args[0]} to {target}; run it with: recipes fit --config {target}")
    return 0
