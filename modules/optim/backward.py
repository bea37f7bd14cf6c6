"""What the factory's optimizers need from a LightningModule's loop: a backward pass that keeps its graph for
optimizers that read Hessian-vector products from the gradients (AdaHessian, Sophia-H:
``OptimizerInfo.create_graph``), and one error line, not a traceback, when an optimizer's own linear algebra
fails on the model's gradients (an eigendecomposition that does not converge, say)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from recipes.modules.errors import ConfigError

__all__ = ["FactoryBackward"]


class FactoryBackward:
    """A LightningModule mixin (``class Task(FactoryBackward, L.LightningModule)``): ``configure_optimization``
    sets ``create_graph`` when the optimizer needs it, and ``backward`` then keeps the graph."""

    create_graph: bool = False

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        except RuntimeError as exc:  # the closure's backward and the Hessian-vector products run in here
            if self.create_graph and "derivative for" in str(exc):  # an operation with no second derivative
                raise ConfigError(
                    f"the optimizer needs second derivatives, and {type(self).__name__}'s loss has an operation "
                    f"without one ({str(exc).splitlines()[0]})",
                    "choose an optimizer without Hessian-vector products (e.g. adamw) for this model",
                ) from None
            if not isinstance(exc, torch.linalg.LinAlgError):
                raise
            raise ConfigError(
                f"{type(optimizer.optimizer if hasattr(optimizer, 'optimizer') else optimizer).__name__}'s linear "
                f"algebra failed on {type(self).__name__}'s gradients at step {self.trainer.global_step} "
                f"({str(exc).splitlines()[0][:160]})",
                "choose another optimizer for this model, e.g. adamw or soap",
            ) from None

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        if self.create_graph:
            kwargs.setdefault("create_graph", True)
        super().backward(loss, *args, **kwargs)
