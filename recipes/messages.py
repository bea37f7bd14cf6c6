"""One clear line for a user's mistake, from our own error or from jsonargparse's nested report.

Light on purpose (no Lightning): the command table and the benchmark's suite parser use it too.
"""

from __future__ import annotations

from recipes.modules.errors import RecipeError, recipe_line

__all__ = ["format_error"]


def format_error(exc: BaseException) -> str:
    """One clear line for a user's mistake: our own message when there is one, else the innermost
    fact of jsonargparse's nested report, with the key it concerns."""
    ours = recipe_line(exc)
    if ours:
        return ours
    text = str(exc)
    lines = [line.strip().lstrip("- ").strip() for line in text.splitlines() if line.strip()]
    noise = (
        "Expected a <class 'NoneType'>",
        "Does not validate against",
        "Subtypes:",
        "Errors:",
        "Given value",
        "Expected a path",
    )
    facts = [line for line in lines if not line.endswith(":") and not line.startswith(noise)]
    keys = [line.split('"')[1] for line in lines if line.startswith('Parser key "')]
    where = f"{keys[0]}.{keys[-1]}" if len(keys) > 1 else (keys[0] if keys else "")
    choices = sorted((f for f in facts if "Literal[" in f), key=len)  # the fullest list of valid values
    fact = choices[-1] if choices else facts[0] if facts else (lines[0] if lines else type(exc).__name__)
    given = [
        line.removeprefix("Given value: ")
        for line in lines
        if line.startswith("Given value: ") and "NestedArg" not in line
    ]
    if given and "Got value" not in fact:
        fact += f", got {given[-1]}"
    return f"{RecipeError.PREFIX} {where + ': ' if where else ''}{fact}. Fix: see python -m recipes fit --help"
