"""Commands beside LightningCLI's own: a short table from name to function (litgpt style)."""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.table import Table

from modules.errors import ConfigError

__all__ = ["COMMANDS", "list_command"]


def _rows(kind: str) -> list[tuple[str, str]]:
    if kind == "optimizers":
        from modules.optim.registry import list_optimizers

        return [(i.name, f"{i.description} [{i.source}]") for i in list_optimizers()]
    if kind == "initializers":
        from modules.init import INITIALIZERS

        return [(i.name, i.description) for i in INITIALIZERS.values()]
    if kind == "schedulers":
        from modules.optim.schedules import SCHEDULES

        return list(SCHEDULES.items())
    raise ConfigError(f"cannot list {kind!r}", "use: python -m recipes list optimizers|initializers|schedulers")


def list_command(args: list[str]) -> int:
    """``python -m recipes list optimizers|initializers|schedulers``: every registered name and what it is."""
    if len(args) != 1:
        raise ConfigError("list takes one argument", "use: python -m recipes list optimizers|initializers|schedulers")
    table = Table(title=f"registered {args[0]}", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, desc in _rows(args[0]):
        table.add_row(name, desc)
    Console(width=160).print(table)
    return 0


def _export(args: list[str]) -> int:
    from recipes.export import export_command

    return export_command(args)


def _benchmark(args: list[str]) -> int:
    from recipes.benchmark.command import benchmark_command

    return benchmark_command(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"list": list_command, "export": _export, "benchmark": _benchmark}
