"""The results file: one JSON object per run (JSONL), rewritten atomically so a killed benchmark never
leaves half a line; read back for resuming, merged across machines, and stamped with the environment."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from recipes.modules.errors import ConfigError

__all__ = [
    "load_results",
    "append_result",
    "write_results",
    "write_text_atomic",
    "merge_results",
    "finished_keys",
    "environment",
]


def load_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record in ``path`` (none if it does not exist); a malformed line is an error naming it."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{lineno} is not a JSON record ({exc.msg})",
                "repair or delete that line; every other run is kept",
            ) from None
        if not isinstance(rec, dict) or "key" not in rec or "status" not in rec:
            raise ConfigError(
                f"{path}:{lineno} is not a benchmark run record (no key/status)",
                "point to a results file written by python -m recipes benchmark",
            )
        records.append(rec)
    return records


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync and a rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(path: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Write ``records`` to ``path`` as JSONL, all or nothing."""
    write_text_atomic(path, "".join(json.dumps(rec, sort_keys=True, allow_nan=True) + "\n" for rec in records))


def append_result(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Add one run to ``path`` (a failed run of the same key is replaced by the new record)."""
    kept = [r for r in load_results(path) if not (r["key"] == record["key"] and r["status"] == "error")]
    write_results(path, kept + [record])


def finished_keys(records: list[dict[str, Any]]) -> set[str]:
    """Keys of runs that need no re-run: reached, missed or diverged (an ``error`` run is retried)."""
    return {r["key"] for r in records if r["status"] != "error"}


def merge_results(inputs: list[str | os.PathLike], out: str | os.PathLike) -> tuple[int, int]:
    """Merge results files (e.g. from several machines) into ``out``; the same run on the same host is
    kept once. Returns (records written, duplicates dropped)."""
    seen, merged, dropped = set(), [], 0
    for path in inputs:
        if not Path(path).is_file():
            raise ConfigError(
                f"no results file {path}", "pass existing JSONL files written by python -m recipes benchmark"
            )
        for rec in load_results(path):
            ident = (rec["key"], rec.get("env", {}).get("host"), rec.get("finished_at"))
            if ident in seen:
                dropped += 1
                continue
            seen.add(ident)
            merged.append(rec)
    write_results(out, merged)
    return len(merged), dropped


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(accelerator: str = "cpu") -> dict[str, Any]:
    """Where a run ran: host, device, thread count and the versions that change numbers."""
    device = (
        torch.cuda.get_device_name(0)
        if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        else _cpu_name()
    )
    return {
        "host": socket.gethostname(),
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            **{
                p: _version(p)
                for p in ("lightning", "torchvision", "torchaudio", "transformers", "scipy", "ray", "recipes")
            },
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        },
        "commit": _git_commit(),
    }
