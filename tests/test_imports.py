"""The import graph of the package: one root (``recipes``), imports that run one way, one room per task,
no cycle. Every import counts, also those inside functions (they run too, just later)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folder -> the name it installs as (pyproject.toml's package-dir).
FOLDERS = {"recipes": "recipes", "modules": "recipes.modules", "data": "recipes.data"}
# The task rooms: the packages that modules/ and data/ both have (a new task adds its two rooms, nothing here).
TASKS = tuple(
    sorted(
        p.name
        for p in (ROOT / "modules").iterdir()
        if (p / "__init__.py").exists() and (ROOT / "data" / p.name / "__init__.py").exists()
    )
)
# What the data side may use of the model side: the shared errors and config helpers, and speech's text
# encoding (the tokenizer both sides share, as torchtune's datasets import its tokenizers).
DATA_MAY_USE = {
    "recipes.modules.errors",
    "recipes.modules.config",
    "recipes.modules.registry",
    "recipes.modules.speech.text",
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, name in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([name, *parts])] = path
    return out


MODULES = _modules()


def _imports(path: Path, name: str) -> set[str]:
    """The package modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


GRAPH = {name: _imports(path, name) for name, path in MODULES.items()}
EDGES = [(src, dst) for src, dsts in GRAPH.items() for dst in sorted(dsts) if dst in MODULES and dst != src]


def _layer(name: str) -> str:
    for layer in ("recipes.modules", "recipes.data", "recipes.configs"):
        if name == layer or name.startswith(layer + "."):
            return layer
    return "recipes"


def _task(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[2] in TASKS else None


def test_the_graph_is_read():
    assert len(MODULES) > 60 and len(EDGES) > 100
    assert ("recipes.modules.image.classifier", "recipes.modules.optim") in EDGES


def test_only_recipes_is_imported_as_a_top_level_name():
    stray = sorted(
        (src, dst) for src, dsts in GRAPH.items() for dst in dsts if dst.split(".")[0] in ("modules", "data", "configs")
    )
    assert not stray, f"imports of a top-level name the wheel does not install: {stray}"


def test_imports_run_one_way():
    bad = []
    for src, dst in EDGES:
        a, b = _layer(src), _layer(dst)
        if a == "recipes.modules" and b != "recipes.modules":
            bad.append((src, dst, "the model side imports only itself"))
        elif a == "recipes.data" and b == "recipes.modules" and dst not in DATA_MAY_USE:
            bad.append((src, dst, f"the data side uses only {sorted(DATA_MAY_USE)} of the model side"))
        elif a == "recipes.data" and b not in ("recipes.data", "recipes.modules"):
            bad.append((src, dst, "the data side never imports the command line"))
    assert not bad, bad


def test_one_room_per_task():
    assert {"image", "recommendation", "speech", "regression"} <= set(TASKS)  # the rooms are found, not listed
    crossing = [
        (s, d)
        for s, d in EDGES
        if _task(s) and _task(d) and _task(s) != _task(d) and not (_layer(s) == "recipes.data" and d in DATA_MAY_USE)
    ]
    assert not crossing, f"one task's module imports another task's: {crossing}"
    shared = [(s, d) for s, d in EDGES if not _task(s) and _task(d) and _layer(s) != "recipes"]
    assert not shared, f"a shared piece imports a task's module (no task branches in shared code): {shared}"


def test_no_import_cycle():
    graph = {src: [dst for s, dst in EDGES if s == src] for src in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


FAST = [
    ["list", "configs"],
    ["list", "schedulers"],
    ["list", "initializers"],
    ["list", "--help"],
    ["cp", "--help"],
    ["benchmark", "--help"],
    ["export", "--help"],
    ["fit", "--config", "no_such_config"],
    ["cp", "nope", "x.yaml"],
]
PROBE = """
import contextlib, io, json, sys
from recipes.__main__ import main
heavy = ("lightning", "pytorch_optimizer", "transformers", "torchaudio")
out = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    out.append([argv, code, sorted(h for h in heavy if h in sys.modules)])
print(json.dumps(out))
"""


def test_the_fast_commands_import_no_lightning(tmp_path):
    """``list``, ``cp``, the extra commands' ``--help`` and a bad config name never import Lightning or the
    optimizer collections (each command runs in one process, in turn, and the heavy modules are looked for)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FAST)], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [code for _, code, _ in results] == [0, 0, 0, 0, 0, 0, 0, 2, 2]
    assert all(not loaded for _, _, loaded in results), results
