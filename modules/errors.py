"""The error family users see: a problem and its fix, printed as one line without a traceback (exit 2).

``RecipeError`` is the base; ``ConfigError`` (settings), ``DataError`` (data files and folders) and
``CheckpointError`` (checkpoint files) say which kind of input was wrong. Each is raised once, where the
problem is found: code that turns a library's exception into one of these lets a ``RecipeError`` through
unchanged (``except RecipeError: raise``), so no message is ever wrapped in a second one.
"""

from __future__ import annotations

__all__ = ["RecipeError", "ConfigError", "DataError", "CheckpointError", "TrainingDiverged", "recipe_line"]


class RecipeError(ValueError):
    """Bad input from the user. ``str(err)`` reads ``recipes: <problem>. Fix: <fix>``.

    A ``ValueError`` so that libraries which report a constructor's ``ValueError`` as a bad value
    (jsonargparse, Lightning) keep doing so; ``recipes.messages.format_error`` then finds our line.
    """

    PREFIX = "recipes:"

    def __init__(self, problem: str, fix: str = "") -> None:
        if self.PREFIX in problem:  # a wrapped RecipeError: its own line is the one that names the cause
            inner = problem[problem.index(self.PREFIX) + len(self.PREFIX) :].strip()
            problem, _, fix = inner.partition(". Fix: ")
        self.problem, self.fix = problem, fix
        super().__init__(f"{self.PREFIX} {problem}" + (f". Fix: {fix}" if fix else ""))


class ConfigError(RecipeError):
    """A setting (YAML key, command-line flag, suite entry) that cannot work."""


class DataError(RecipeError):
    """Data the user pointed at, or that a recipe needs, is missing, unreadable or not what it should be."""


class CheckpointError(RecipeError):
    """A checkpoint file is missing, unreadable, unsafe, or not one for this model."""


def recipe_line(exc: BaseException) -> str | None:
    """Our one line for ``exc``: the ``RecipeError`` it is or was raised from (its cause and context chain),
    else the line of ours inside a library's report that carries only our message's text (jsonargparse's
    parse errors); None when there is none."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, (RecipeError, TrainingDiverged)):
            return str(link)
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    text = str(exc)
    for line in text.splitlines():
        if RecipeError.PREFIX in line:
            return line[line.index(RecipeError.PREFIX) :].strip()
    return None


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stops and earlier checkpoints stay as they were (exit 1)."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(
            f"{RecipeError.PREFIX} the training loss became {value} at step {step}. Fix: lower the learning "
            "rate (--model.optimizer.lr), add warmup (--model.scheduler.warmup_steps) or gradient clipping "
            "(--trainer.gradient_clip_val 1.0); the last good checkpoint was kept"
        )
