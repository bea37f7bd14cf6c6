"""One optimizer made of several: parameter subsets routed to different optimizers (Muon for hidden matrices,
AdamW for the rest; an embedding table's own optimizer), and optimizers that take over at a step (Adam, then
SGD with momentum, as in SWATS).

Lightning sees one ``torch.optim.Optimizer``: its ``param_groups`` hold the model's own parameters, so the
lr schedule, gradient clipping, mixed precision's unscaling, ``zero_grad`` and DDP work as for any optimizer;
``state_dict`` nests each part's, so checkpoints resume exactly, before or after a switch.

Each part keeps its own param groups. Before a part steps, each of its groups takes the lr the schedule set
on its anchor (the composite's group it mirrors): ``lr = base_lr * anchor_lr / anchor_base_lr``, so every
part keeps its own peak lr under the one schedule. A part that needs exactly 2-D matrices (``torch.optim.Muon``)
steps 2-D views of conv filters, ``(out_channels, in_channels * kh * kw)``, as Muon's authors reshape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["Part", "CompositeOptimizer", "matrix_views"]


def as_matrix(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` as an ``(out, rest)`` matrix, its trailing dimensions flattened in the memory order of ``like`` (a
    parameter): a view of ``like`` itself, also in channels-last layout, where ``view(out, -1)`` would fail. The
    columns' order does not matter to a matrix optimizer (orthogonalization permutes with them), only that the
    weight and its gradient use the same one."""
    order = (0, *sorted(range(1, like.ndim), key=lambda d: -like.stride(d)))
    return t.permute(order).reshape(t.shape[0], -1)


def matrix_views(params: list[nn.Parameter]) -> dict[nn.Parameter, nn.Parameter]:
    """A 2-D parameter for each parameter of more than two dimensions, sharing its storage."""
    return {p: nn.Parameter(as_matrix(p.detach(), p)) for p in params if p.ndim > 2}


@dataclass
class Part:
    """One optimizer inside a composite.

    Args:
        label: its role, the key of its state in checkpoints (``main``, ``fallback``, ``switch``).
        optimizer: the optimizer, built over ``views``' parameters where it has them.
        anchors: for each of its param groups, the index of the composite's group whose lr schedule it follows.
        start: the composite step at which it starts stepping.
        stop: the step at which it stops (its state is then freed); None: to the end.
        views: 2-D stand-ins for parameters it cannot take as they are (``matrix_views``).
    """

    label: str
    optimizer: torch.optim.Optimizer
    anchors: list[int]
    start: int = 0
    stop: int | None = None
    views: dict[nn.Parameter, nn.Parameter] = field(default_factory=dict)
    base_lrs: list[float] = field(init=False)  # each group's peak lr, as built

    def __post_init__(self) -> None:
        self.base_lrs = [float(g["lr"]) for g in self.optimizer.param_groups]

    def active(self, step: int) -> bool:
        return step >= self.start and (self.stop is None or step < self.stop)


class CompositeOptimizer(torch.optim.Optimizer):
    """Steps each part whose window holds the current step, over one set of param groups for Lightning.

    Args:
        groups: the composite's param groups (dicts with the model's parameters, ``lr`` and ``name``), which
            the schedule and Lightning see; every parameter appears once.
        parts: the optimizers, in stepping order.
    """

    def __init__(self, groups: list[dict[str, Any]], parts: list[Part]) -> None:
        self.parts = parts
        self.steps = 0
        super().__init__(groups, defaults={})
        self.base_lrs = [float(g["lr"]) for g in self.param_groups]

    @property
    def state(self) -> dict:
        """The parts' states in one dict (read only: the parts hold them; a lookup never adds an entry)."""
        return {p: s for part in self.parts for p, s in part.optimizer.state.items()}

    @state.setter
    def state(self, value: Any) -> None:
        if value:  # Optimizer.__init__ assigns an empty dict; nothing else may
            raise AttributeError("a composite optimizer's state lives in its parts")

    def _follow_schedule(self, part: Part) -> None:
        for group, base, anchor in zip(part.optimizer.param_groups, part.base_lrs, part.anchors):
            outer, outer_base = self.param_groups[anchor], self.base_lrs[anchor]
            group["lr"] = base * (outer["lr"] / outer_base) if outer_base else outer["lr"]

    def _bind_views(self, part: Part, bind: bool) -> None:
        for p, view in part.views.items():
            view.data = as_matrix(p.data, p)  # the same storage, also after the model moved
            view.grad = as_matrix(p.grad, p) if bind and p.grad is not None else None

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            if part.stop is not None and self.steps >= part.stop and part.optimizer.state:
                part.optimizer.state.clear()  # switched away from: its moments are not needed again
            if not part.active(self.steps):
                continue
            self._follow_schedule(part)
            self._bind_views(part, True)
            part.optimizer.step()
            self._bind_views(part, False)
        self.steps += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "groups": [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups],
            "parts": {part.label: part.optimizer.state_dict() for part in self.parts},
            "windows": {part.label: [part.start, part.stop] for part in self.parts},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        labels = [part.label for part in self.parts]
        if sorted(state_dict.get("parts", {})) != sorted(labels) or len(state_dict["groups"]) != len(self.param_groups):
            raise ValueError(
                f"the checkpoint's optimizer has parts {sorted(state_dict.get('parts', {}))} and "
                f"{len(state_dict.get('groups', []))} groups; this one has {sorted(labels)} and "
                f"{len(self.param_groups)}"
            )
        for part in self.parts:
            part.optimizer.load_state_dict(state_dict["parts"][part.label])
            # the run's own switch step, also when a resumed run is longer (at_fraction of a new total)
            part.start, part.stop = state_dict.get("windows", {}).get(part.label, (part.start, part.stop))
        for group, saved in zip(self.param_groups, state_dict["groups"]):
            group.update(saved)
        self.steps = int(state_dict["steps"])

    def __repr__(self) -> str:
        windows = ", ".join(
            f"{p.label}: {type(p.optimizer).__name__}"
            + (f" from step {p.start}" if p.start else "")
            + (f" to step {p.stop}" if p.stop is not None else "")
            for p in self.parts
        )
        return f"CompositeOptimizer({windows})"
