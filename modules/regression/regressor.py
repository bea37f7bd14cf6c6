"""Linear regression with a known optimum: checks the optimizer factory and the benchmark harness.

The model is one ``nn.Linear``; the loss is the mean squared error. Besides the validation MSE it logs
``val/dist_to_opt``, the relative distance ``||theta - theta*|| / ||theta*||`` of (weights, bias) to the
training set's least-squares optimum, which the datamodule solves exactly (``optimum``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torchmetrics import MeanSquaredError

from recipes.modules.errors import ConfigError
from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.task import TaskModule

__all__ = ["LinearRegression", "KnownOptimum"]


@runtime_checkable
class KnownOptimum(Protocol):
    """Data whose least-squares optimum is known (``SyntheticRegressionDataModule``): the distance to it is logged."""

    optimum: tuple[Tensor, Tensor]


class LinearRegression(TaskModule):
    """Least-squares linear regression.

    Args:
        dim: number of input features; the CLI takes it from the datamodule.
        optimizer: the optimizer (shared factory).
        scheduler: the learning-rate schedule (shared factory).
        compile: compile the network with ``torch.compile`` (``recipes.modules.compile``): true, or its arguments
            (``{mode: max-autotune, dynamic: true}``); checkpoints are the same either way.
        init: the initializer of the linear layer (shared factory).
    """

    def __init__(
        self,
        dim: int = 32,
        optimizer: OptimizerConfig = OptimizerConfig(),
        scheduler: SchedulerConfig = SchedulerConfig(),
        compile: bool | dict[str, Any] = False,
        init: InitConfig = InitConfig(),
    ) -> None:
        super().__init__()
        self.configure_training(optimizer, scheduler, compile, init)
        self.net = self.initialize(nn.Linear(dim, 1))
        self.optimum: tuple[Tensor, Tensor] | None = None
        # Metric objects sum over every rank's batches, so the MSE under DDP is the one-process MSE.
        self.val_mse, self.test_mse = MeanSquaredError(), MeanSquaredError()

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        self.optimum = dm.optimum if isinstance(dm, KnownOptimum) else None
        if self.optimum is not None and self.optimum[0].numel() != self.net.in_features:
            raise ConfigError(
                f"model dim {self.net.in_features} differs from the data's {self.optimum[0].numel()}",
                "let the CLI link data.dim",
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)

    def model_step(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def distance_to_optimum(self) -> float:
        """Relative distance of (weights, bias) to the least-squares optimum, computed in float64."""
        w_opt, b_opt = self.optimum
        theta = torch.cat([self.net.weight.detach().double().flatten().cpu(), self.net.bias.detach().double().cpu()])
        opt = torch.cat([w_opt, b_opt.reshape(1)])
        return float(torch.linalg.vector_norm(theta - opt) / torch.linalg.vector_norm(opt))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        metric = getattr(self, f"{stage}_mse")
        metric(self(x), y)
        self.log(f"{stage}/mse", metric, prog_bar=True)
        if self.optimum is not None:  # the same on every rank: it reads the weights only
            self.log(f"{stage}/dist_to_opt", self.distance_to_optimum(), prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        x, y, index = batch
        return {"index": index, "prediction": self(x).float(), "target": y}
