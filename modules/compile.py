"""``model.compile``: the task's network compiled with ``torch.compile`` (TorchInductor: fused kernels on CPU and
GPU), for every task.

The network is compiled in place (``nn.Module.compile``), so its ``state_dict`` keeps its keys: checkpoints of a
compiled model load into an uncompiled one and back, and resuming, DDP and the optimizer's parameter groups see
the same parameters. Compiling happens in Lightning's ``configure_model`` hook and costs time on the first steps
of each input shape (``{dynamic: true}`` avoids recompiling for every length of speech batches).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from recipes.modules.errors import ConfigError

__all__ = ["CompiledNet", "check_compile", "compile_network"]

COMPILE_KEYS = ("mode", "dynamic", "fullgraph", "backend", "options")


def check_compile(setting: bool | dict[str, Any]) -> None:
    """A ConfigError for a ``model.compile`` value other than true, false or ``torch.compile``'s arguments."""
    if isinstance(setting, dict):
        unknown = sorted(set(setting) - set(COMPILE_KEYS))
        if unknown:
            raise ConfigError(f"model.compile takes no {unknown[0]}", f"its keys are {', '.join(COMPILE_KEYS)}")
    elif not isinstance(setting, bool):
        raise ConfigError(
            f"model.compile is true, false or torch.compile's arguments, got {setting!r}",
            "e.g. --model.compile true or --model.compile '{mode: max-autotune, dynamic: true}'",
        )


def compile_network(net: nn.Module, setting: bool | dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """Compile ``net`` in place when ``setting`` is true or a dict of ``torch.compile`` arguments (over
    ``defaults``, a task's own)."""
    check_compile(setting)
    if setting:
        net.compile(**{**(defaults or {}), **(setting if isinstance(setting, dict) else {})})


class CompiledNet:
    """A LightningModule mixin: compiles its submodule ``compiled_net`` when its ``compile`` hyperparameter says so."""

    compiled_net: str = "net"
    compile_defaults: dict[str, Any] = {}  # a task's own torch.compile arguments, under the user's

    def configure_model(self) -> None:
        setting = self.hparams.get("compile", False)  # type: ignore[attr-defined]
        compile_network(self.get_submodule(self.compiled_net), setting, self.compile_defaults)
