"""How an optimizer's constructor is called: the arguments a config names, the implementation (fused,
foreach, for-loop) and the values the run fills in."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch

from recipes.modules.errors import ConfigError
from recipes.modules.optim.settings import OptimizerSettings

if TYPE_CHECKING:
    import lightning as L

__all__ = ["fused_supported", "fused_clipping_conflict", "constructor_kwargs", "has_argument"]


def rank_zero_info(message: str) -> None:
    """Lightning's rank-zero log line, imported when first used: importing the factory needs no Lightning."""
    from lightning.pytorch.utilities import rank_zero_info as info

    info(message)


def has_argument(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def fused_supported(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused optimizer kernels accept these parameters (floating point, a supported device)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = set(_get_fused_kernels_supported_devices())
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


def fused_clipping_conflict(trainer: "L.Trainer") -> str | None:
    """Why this run cannot clip a fused optimizer's gradients, or None.

    A fused optimizer (``_step_supports_amp_scaling``) unscales 16-bit gradients inside its own step, after
    Lightning clipped them. So Lightning's ``MixedPrecision`` plugin (``16-mixed`` and ``bf16-mixed``, with or
    without a GradScaler) refuses to clip for one, and a plugin with a GradScaler that does not refuse
    (``FSDPPrecision`` in ``16-mixed``) would clip the still-scaled gradients.
    """
    from lightning.pytorch.plugins.precision import MixedPrecision

    clip, plugin = trainer.gradient_clip_val, trainer.precision_plugin
    if not (clip and clip > 0):
        return None
    if isinstance(plugin, MixedPrecision):
        return (
            f"Lightning refuses to clip a fused optimizer's gradients under precision {plugin.precision} "
            f"(gradient_clip_val {clip:g})"
        )
    if getattr(plugin, "scaler", None) is not None:
        return (
            f"{type(plugin).__name__} would clip a fused optimizer's gradients before unscaling them "
            f"(gradient_clip_val {clip:g})"
        )
    return None


def constructor_kwargs(
    cls: type, cfg: OptimizerSettings, params: list[torch.Tensor], fused_conflict: str | None = None
) -> dict[str, Any]:
    sig = inspect.signature(cls.__init__)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    named = {"betas": cfg.betas, "eps": cfg.eps, "momentum": cfg.momentum, "nesterov": cfg.nesterov}
    kwargs = {k: (tuple(v) if k == "betas" else v) for k, v in named.items() if v is not None}
    kwargs.update(cfg.kwargs)
    valid = [n for n in sig.parameters if n not in ("self", "params")]
    unknown = sorted(k for k in kwargs if k not in sig.parameters)
    if unknown and not accepts_any:
        fields = [k for k in unknown if k in named]
        unset = f"set {', '.join(f'model.optimizer.{k}' for k in fields)} to null (a config may set it for another "
        raise ConfigError(
            f"optimizer {cfg.name!r} takes no argument {', '.join(unknown)}",
            (unset + "optimizer); " if fields else "") + f"its arguments are: {', '.join(valid)}",
        )
    if cfg.implementation != "auto" and not {"fused", "foreach"} & set(sig.parameters):
        raise ConfigError(
            f"optimizer {cfg.name!r} has no fused/foreach implementations", "set model.optimizer.implementation: auto"
        )
    user_chose = {"fused", "foreach"} & set(kwargs)  # kwargs: {foreach: true} is the user's choice, kept as is
    # auto means torch's fused kernels: another package's `fused` flag (Triton kernels, say) is its own choice
    torch_fused = "fused" in sig.parameters and cls.__module__.startswith("torch.optim")
    if cfg.implementation == "fused" or (cfg.implementation == "auto" and torch_fused and not user_chose):
        if cfg.implementation == "fused" and "fused" not in sig.parameters:
            raise ConfigError(
                f"optimizer {cfg.name!r} has no fused implementation", "use implementation auto or foreach"
            )
        if cfg.implementation == "fused" and fused_conflict:
            raise ConfigError(
                f"implementation fused does not work in this run: {fused_conflict}",
                "set model.optimizer.implementation: auto (it picks foreach), or trainer.gradient_clip_val: null",
            )
        if fused_supported(params) and not kwargs.get("differentiable", False):
            if not fused_conflict:
                kwargs["fused"] = True
            else:
                if "foreach" in sig.parameters:
                    kwargs["foreach"] = True
                chosen = "foreach" if kwargs.get("foreach") else "default"
                rank_zero_info(f"{cls.__name__}: {chosen} implementation, not fused: {fused_conflict}")
        elif cfg.implementation == "fused":
            raise ConfigError(
                "fused kernels do not support these parameters' device or dtype", "use implementation auto"
            )
    elif cfg.implementation == "foreach":
        kwargs["foreach"] = True
    elif cfg.implementation == "for_loop":
        kwargs.update({k: False for k in ("foreach", "fused") if k in sig.parameters})
    if kwargs.get("fused") and fused_conflict:  # kwargs: {fused: true}, the user's own choice
        raise ConfigError(
            f"model.optimizer.kwargs fused: true does not work in this run: {fused_conflict}",
            "drop it (implementation auto picks foreach), or set trainer.gradient_clip_val: null",
        )
    return kwargs
