"""``recipes`` / ``python -m recipes``: the command table (litgpt style).

``fit | validate | test | predict`` go to LightningCLI (``recipes/cli.py``); ``list``, ``cp``, ``export`` and
``benchmark`` are the commands below. Only what a command needs is imported, so ``list`` and ``cp`` never
import Lightning.
"""

from __future__ import annotations

import sys
from argparse import ArgumentError
from typing import Callable

from recipes.config_files import resolve_config_args
from recipes.modules.errors import RecipeError, recipe_line

__all__ = ["COMMANDS", "main"]


def _list(args: list[str]) -> int:
    from recipes.commands import list_command

    return list_command(args)


def _cp(args: list[str]) -> int:
    from recipes.commands import cp_command

    return cp_command(args)


def _export(args: list[str]) -> int:
    from recipes.export import export_command

    return export_command(args)


def _benchmark(args: list[str]) -> int:
    from recipes.benchmark.command import benchmark_command

    return benchmark_command(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"list": _list, "cp": _cp, "export": _export, "benchmark": _benchmark}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``recipes``; returns the process exit code (2 for a user's mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in COMMANDS:
            return COMMANDS[args[0]](resolve_config_args(args[1:]))
        args = resolve_config_args(args)  # a bad name fails here, before Lightning is imported
        from recipes.cli import run_cli

        return run_cli(args, from_sys=argv is None)
    except RecipeError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ArgumentError, ValueError) as exc:  # jsonargparse's reports, and our errors it wrapped
        if not isinstance(exc, ArgumentError) and recipe_line(exc) is None:
            raise
        from recipes.messages import format_error

        print(format_error(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
