"""The initializer registry and the rule that applies it to freshly built modules.

Rule: every ``nn.Linear``, ``nn.Conv*``/``nn.ConvTranspose*`` and ``nn.Embedding`` weight gets the chosen
initializer, their biases zero, and normalization layers weight 1 and bias 0. With
``zero_init_residual`` every module that has a ``zero_init_last()`` method (timm's convention; our
residual blocks have it) zeroes its last normalization, so each residual branch starts as identity.
Subtrees marked with ``mark_pretrained`` are skipped: loaded weights are never touched. Task modules
call ``apply_init`` in ``__init__``, before any checkpoint is loaded over the fresh weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry

__all__ = ["InitConfig", "InitializerInfo", "INITIALIZERS", "apply_init", "mark_pretrained", "fan_in_out"]

_WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
# The std of a standard normal truncated to [-2, 2]; dividing by it gives a truncated init the target std.
_TRUNC_STD = 0.87962566103423978


@dataclass(frozen=True)
class InitConfig:
    """Which initializer to apply to freshly built weights.

    Args:
        name: a registered initializer (``python -m recipes list initializers``); default keeps PyTorch's own.
        mode: fan_in or fan_out, for kaiming.
        nonlinearity: the activation kaiming's gain is computed for (relu, leaky_relu, linear, tanh, selu...).
        std: the standard deviation for normal and trunc_normal.
        gain: the gain for xavier and orthogonal.
        zero_init_residual: start every residual block as identity by zeroing its last normalization.
    """

    name: str = "default"
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: str = "relu"
    std: float = 0.02
    gain: float = 1.0
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        get_initializer(self.name)
        if self.std <= 0 or self.gain <= 0:
            raise ConfigError("init std and gain must be > 0", "fix model.init.std / model.init.gain")
        try:
            nn.init.calculate_gain(self.nonlinearity)
        except ValueError:
            raise ConfigError(
                f"unknown nonlinearity {self.nonlinearity!r}", "use relu, leaky_relu, linear, tanh, sigmoid or selu"
            ) from None


def fan_in_out(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch counts them: input/output features times the kernel's size."""
    if weight.ndim < 2:
        raise ValueError("fan in/out needs a weight with at least 2 dimensions")
    receptive = math.prod(weight.shape[2:]) if weight.ndim > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _lecun_normal(w: torch.Tensor, cfg: InitConfig) -> None:
    std = math.sqrt(1.0 / fan_in_out(w)[0]) / _TRUNC_STD
    nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def _trunc_normal(w: torch.Tensor, cfg: InitConfig) -> None:
    nn.init.trunc_normal_(w, std=cfg.std, a=-2 * cfg.std, b=2 * cfg.std)


@dataclass(frozen=True)
class InitializerInfo:
    """One registered initializer: ``fn(weight, cfg)`` fills a weight in place; None keeps PyTorch's init."""

    name: str
    fn: Callable[[torch.Tensor, InitConfig], None] | None
    description: str


INITIALIZERS: Registry[InitializerInfo] = Registry(
    "initializer",
    (
        (i.name, i)
        for i in [
            InitializerInfo("default", None, "PyTorch's own per-layer initialization, left as built"),
            InitializerInfo(
                "xavier_uniform",
                lambda w, c: nn.init.xavier_uniform_(w, gain=c.gain),
                "Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))",
            ),
            InitializerInfo(
                "xavier_normal",
                lambda w, c: nn.init.xavier_normal_(w, gain=c.gain),
                "Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out))",
            ),
            InitializerInfo(
                "kaiming_uniform",
                lambda w, c: nn.init.kaiming_uniform_(w, mode=c.mode, nonlinearity=c.nonlinearity),
                "He uniform: bound = gain * sqrt(3 / fan), fan from mode",
            ),
            InitializerInfo(
                "kaiming_normal",
                lambda w, c: nn.init.kaiming_normal_(w, mode=c.mode, nonlinearity=c.nonlinearity),
                "He normal: std = gain / sqrt(fan), e.g. sqrt(2 / fan_in) for relu",
            ),
            InitializerInfo(
                "orthogonal",
                lambda w, c: nn.init.orthogonal_(w, gain=c.gain),
                "(semi-)orthogonal matrix scaled by gain (Saxe et al., 2014)",
            ),
            InitializerInfo("trunc_normal", _trunc_normal, "normal(0, std) truncated at +-2 std (ViT/timm style)"),
            InitializerInfo(
                "lecun_normal", _lecun_normal, "truncated normal with std = sqrt(1 / fan_in) (LeCun; JAX/Flax default)"
            ),
            InitializerInfo(
                "normal", lambda w, c: nn.init.normal_(w, std=c.std), "normal(0, std) (BERT/GPT-2 style with std 0.02)"
            ),
            InitializerInfo(
                "zeros",
                lambda w, c: nn.init.zeros_(w),
                "all zeros (linear probes and heads only: hidden layers never break symmetry)",
            ),
        ]
    ),
    setting="model.init.name",
)


def get_initializer(name: str) -> InitializerInfo:
    """Look an initializer up by name; an unknown name fails with the closest ones."""
    return INITIALIZERS.lookup(name)


def mark_pretrained(module: nn.Module) -> nn.Module:
    """Mark ``module`` as holding loaded weights: ``apply_init`` will leave its whole subtree alone."""
    module.is_pretrained = True
    return module


def _fresh_modules(model: nn.Module):
    stack = [model]
    while stack:
        m = stack.pop()
        if getattr(m, "is_pretrained", False):
            continue
        yield m
        stack.extend(m.children())


@torch.no_grad()
def apply_init(model: nn.Module, cfg: InitConfig) -> int:
    """Initialize ``model``'s fresh layers by ``cfg``; returns how many weight tensors were set."""
    info = get_initializer(cfg.name)
    count = 0
    for m in _fresh_modules(model):
        if info.fn is not None and isinstance(m, _WEIGHTED):
            info.fn(m.weight, cfg)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            if getattr(m, "padding_idx", None) is not None and isinstance(m, nn.Embedding):
                m.weight[m.padding_idx].zero_()
            count += 1
        elif info.fn is not None and isinstance(m, _NORMS):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    if cfg.zero_init_residual:  # after the pass above, which resets every normalization to 1
        for m in _fresh_modules(model):
            if callable(getattr(m, "zero_init_last", None)):
                m.zero_init_last()
    return count
