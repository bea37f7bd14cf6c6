"""``python -m recipes export``: a fine-tuned checkpoint as a directory that transformers loads.

    python -m recipes export --config speech_whisper --ckpt_path best --out_dir exported/

The config (with any overrides) rebuilds the LightningModule, the checkpoint's weights are loaded into it,
and its ``export_pretrained(out_dir)`` writes ``save_pretrained`` output (weights, config, tokenizer or
processor). The directory is written beside its final name and renamed into place, so a failed export
never leaves a half-written model behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from recipes.modules.checkpoint_file import check_compatible, read_checkpoint
from recipes.modules.errors import ConfigError

__all__ = ["export_command"]

USAGE = "use: python -m recipes export --config CONFIG [overrides] --ckpt_path best|last|PATH --out_dir DIR"


def _take(args: list[str], flag: str) -> tuple[str | None, list[str]]:
    rest, value, i = [], None, 0
    while i < len(args):
        key, eq, val = args[i].partition("=")
        if key == flag:
            if not eq:
                if i + 1 >= len(args):
                    raise ConfigError(f"{flag} needs a value", USAGE)
                val = args[i + 1]
                i += 1
            value = val
        else:
            rest.append(args[i])
        i += 1
    return value, rest


def export_command(args: list[str]) -> int:
    """Load ``--ckpt_path`` into the model the config builds and write it to ``--out_dir``."""
    if args in (["-h"], ["--help"]):
        print(USAGE.removeprefix("use: "))
        return 0
    from recipes.cli import CKPT_FIX, best_checkpoint, build_cli, last_checkpoint

    ckpt, args = _take(args, "--ckpt_path")
    out_dir, args = _take(args, "--out_dir")
    if not ckpt or not out_dir:
        raise ConfigError("export needs --ckpt_path and --out_dir", USAGE)
    # A file the user named is read (safely) before the model is built, so a bad one fails at once.
    content = read_checkpoint(ckpt, "--ckpt_path", CKPT_FIX) if ckpt not in ("best", "last") else None
    cli = build_cli(args, run=False)
    model = cli.model
    if content is None:
        dirpath = cli.config.checkpoint.dirpath or os.path.join(
            cli.config.trainer.default_root_dir or ".", "checkpoints"
        )
        ckpt = best_checkpoint(dirpath) if ckpt == "best" else last_checkpoint(dirpath)
        content = read_checkpoint(ckpt, "--ckpt_path", CKPT_FIX)
    check_compatible(content, model, ckpt)  # another task's or network's checkpoint: named before anything else
    if not callable(getattr(model, "export_pretrained", None)):
        raise ConfigError(
            f"{type(model).__name__} has no pretrained backbone to export",
            "export works for models fine-tuned from a transformers backbone",
        )
    model.load_state_dict(content["state_dict"])
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        model.export_pretrained(tmp)
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"exported {ckpt} to {out_dir}")
    return 0
