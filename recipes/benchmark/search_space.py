"""A submission's tuning search space, in AlgoPerf's ``tuning_search_space.json`` format, and its trials.

Two forms, read from JSON or YAML (a file, or inline in the suite) exactly as AlgoPerf writes them:

* a mapping of hyperparameter name -> ``{"min": a, "max": b, "scaling": "log" | "linear"}`` or
  ``{"feasible_points": [...]}``; trials are points of a scrambled Halton sequence over the space (the
  quasi-random search of Bousquet et al., 2017, that AlgoPerf uses), mapped to each range (log scaling:
  ``min * (max / min) ** u``) or to a feasible point (``points[floor(u * len(points))]``);
* a list of fixed points (``[{"learning_rate": 0.001, ...}, ...]``); each study samples its trials from
  the list without replacement.

Every study has its own seed (``study_seed``), so studies get different points; the points of a study are a
prefix of its sequence, so raising the number of trials keeps the trials already run.

``sequence: algoperf`` draws AlgoPerf's own points instead (``algoperf_halton``, after ``algoperf/halton.py``:
odd primes below 1000 as bases, a digit permutation and a shift per base from ``RandomState(base)``, the first
100 points skipped, the points shuffled), with the shuffle seeded by the study's seed, so an AlgoPerf
``tuning_search_space.json`` gives the points AlgoPerf draws after ``numpy.random.seed(seed)``; a list search
space gives its first points in order, as AlgoPerf's does.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

from recipes.modules.errors import ConfigError

__all__ = ["load_search_space", "check_search_space", "sample_trials", "study_seed", "algoperf_halton"]

SearchSpace = dict[str, dict[str, Any]] | list[dict[str, Any]]


def load_search_space(value: str | dict | list, base: Path | None = None) -> SearchSpace:
    """The search space ``value``: inline (a mapping or list), or a JSON/YAML file (relative to ``base``)."""
    if isinstance(value, (dict, list)):
        return check_search_space(value, "inline search_space")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ConfigError(
            f"search_space {value}: no such file", "give a JSON or YAML file (relative to the suite file) or a mapping"
        )
    text = path.read_text()
    try:
        if path.suffix == ".json":
            space = json.loads(text)
        else:
            import yaml

            space = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise their own types
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ConfigError(f"search_space {path} is not valid {kind}: {exc}", "fix the file") from None
    return check_search_space(space, str(path))


def _bad(where: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{where}: {problem}",
        "write AlgoPerf's format: {name: {min: a, max: b, scaling: log|linear}} or {name: {feasible_points: [...]}}, "
        "or a list of points",
    )


def check_search_space(space: Any, where: str) -> SearchSpace:
    """``space`` if it is a valid search space, else one ConfigError naming the bad entry."""
    if isinstance(space, list):
        if not space or not all(isinstance(p, dict) for p in space):
            raise _bad(where, "a list search space must be a non-empty list of mappings")
        names = set(space[0])
        for i, point in enumerate(space):
            if set(point) != names:
                raise _bad(where, f"point {i} has keys {sorted(point)}, point 0 has {sorted(names)}")
        return space
    if not isinstance(space, dict):
        raise _bad(where, f"expected a mapping or a list, got {type(space).__name__}")
    for name, entry in space.items():
        if not isinstance(entry, dict):
            raise _bad(where, f"{name!r} must be a mapping, got {entry!r}")
        if "feasible_points" in entry:
            if set(entry) != {"feasible_points"} or not isinstance(entry["feasible_points"], list):
                raise _bad(where, f"{name!r}: feasible_points must be a list, alone")
            if not entry["feasible_points"]:
                raise _bad(where, f"{name!r}: feasible_points is empty")
            continue
        if set(entry) != {"min", "max", "scaling"}:
            raise _bad(where, f"{name!r} has keys {sorted(entry)}")
        lo, hi, scaling = entry["min"], entry["max"], entry["scaling"]
        if scaling not in ("log", "linear"):
            raise _bad(where, f"{name!r}: scaling {scaling!r} is not log or linear")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or not lo <= hi:
            raise _bad(where, f"{name!r}: min and max must be numbers with min <= max")
        if scaling == "log" and lo <= 0:
            raise _bad(where, f"{name!r}: a log range needs min > 0")
    return space


def study_seed(tuning_seed: int, study: int) -> int:
    """The seed of one study's sequence: a hash of (tuning_seed, study), so studies never share points."""
    return int.from_bytes(hashlib.sha256(f"{tuning_seed}:{study}".encode()).digest()[:4], "little")


def halton(n: int, dims: int, seed: int | None) -> list[list[float]]:
    """``n`` points in [0, 1)^dims of the Halton sequence, scrambled by random digit permutations (scipy's
    ``qmc.Halton``, Owen 2017) when ``seed`` is given, plain (Halton's radical inverses) when it is None."""
    if dims == 0:
        return [[] for _ in range(n)]
    from scipy.stats import qmc

    return qmc.Halton(d=dims, scramble=seed is not None, seed=seed).random(n).tolist()


def _odd_primes_below(limit: int) -> list[int]:
    """The odd primes below ``limit`` (2 is not among AlgoPerf's bases)."""
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return [p for p in range(3, limit, 2) if sieve[p]]


def algoperf_bases(dims: int) -> list[int]:
    """AlgoPerf's bases for ``dims`` dimensions: the odd primes below 1000 k (k = 1, 2, ... until there are more
    than ``dims``), all but the largest, the last ``dims`` of them: 983 and 991 for two dimensions."""
    k = 1
    while len(primes := _odd_primes_below(1000 * k)) < dims + 1:
        k += 1
    return primes[-dims - 1 : -1]


def algoperf_halton(n: int, dims: int, seed: int | None, skip: int = 100) -> list[list[float]]:
    """``n`` points in [0, 1)^dims drawn as AlgoPerf's ``generate_sequence`` draws them (see the module
    docstring): point i (from ``skip + 1`` on) has, in each base p, the radical inverse of i with its digits
    mapped through a permutation of 1..p-1 (0 stays 0) that ``RandomState(p)`` shuffles, plus a shift drawn next
    from the same generator, modulo 1. The points are shuffled by ``RandomState(seed)`` (AlgoPerf: numpy's
    global generator); None keeps their order."""
    import numpy as np

    columns = []
    for p in algoperf_bases(dims):
        rng = np.random.RandomState(p)
        digits = list(range(1, p))
        rng.shuffle(digits)
        digits = [0, *digits]
        shift = rng.random_sample()
        column = []
        for i in range(skip + 1, skip + n + 1):
            u, scale = 0.0, p
            while i:
                u += digits[i % p] / scale
                scale *= p
                i //= p
            column.append(math.fmod(u + shift, 1.0))
        columns.append(column)
    points = [list(row) for row in zip(*columns)] if dims else [[] for _ in range(n)]
    if seed is not None:
        np.random.RandomState(seed).shuffle(points)
    return points


def _value(entry: dict[str, Any], u: float) -> Any:
    if "feasible_points" in entry:
        points = entry["feasible_points"]
        return points[min(int(math.floor(u * len(points))), len(points) - 1)]
    lo, hi = float(entry["min"]), float(entry["max"])
    if entry["scaling"] == "log":
        return lo * math.exp(u * math.log(hi / lo))
    return lo + u * (hi - lo)


def sample_trials(space: SearchSpace, trials: int, seed: int | None, sequence: str = "scipy") -> list[dict[str, Any]]:
    """The ``trials`` points of one study (see the module docstring); ``seed`` None gives the unscrambled
    sequence (for checking against known values); ``sequence``: scipy (this project's) or algoperf."""
    if isinstance(space, list):
        if trials > len(space):
            raise ConfigError(
                f"the search space lists {len(space)} points but a study runs {trials} trials",
                f"list at least {trials} points or set trials: {len(space)}",
            )
        if sequence == "algoperf":
            return [dict(point) for point in space[:trials]]
        order = random.Random(seed).sample(range(len(space)), len(space))  # a permutation: more trials, same prefix
        return [dict(space[i]) for i in order[:trials]]
    names = list(space)
    draw = algoperf_halton if sequence == "algoperf" else halton
    return [{k: _value(space[k], u) for k, u in zip(names, row)} for row in draw(trials, len(names), seed)]
