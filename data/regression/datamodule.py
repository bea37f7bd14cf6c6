"""Linear regression on synthetic data with a known least-squares optimum: the smallest benchmark workload.

Features are Gaussian with per-feature scales spread geometrically over ``condition`` (an ill-conditioned,
axis-aligned problem: the textbook case where Adam's diagonal preconditioning beats plain SGD), targets are
``X @ w_true + b_true + noise``. The least-squares optimum of the training set is solved once in float64 and
exposed as ``optimum`` (weights, bias), so a model's distance to it is an exact, checkable metric.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from recipes.data.batching import TensorBatchDataset, batch_loader
from recipes.data.datamodule import Split, TaskDataModule
from recipes.modules.errors import ConfigError

__all__ = ["SyntheticRegressionDataModule", "least_squares"]


def least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weights, bias) minimizing the mean squared error of ``x @ w + b`` against ``y``, in float64."""
    a = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(a, y.double().unsqueeze(1)).solution.squeeze(1)
    return sol[:-1], sol[-1]


class SyntheticRegressionDataModule(TaskDataModule):
    """Seeded synthetic linear-regression data.

    Args:
        num_train: training samples.
        num_val: validation samples (the validation MSE is logged beside the distance to the optimum).
        dim: number of features.
        condition: ratio of the largest to the smallest feature scale (1: well conditioned).
        noise: standard deviation of the target noise.
        batch_size: samples per batch.
        seed: seed of the data (not of the training run).
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py, when both exist).
    model_links: ClassVar[dict[str, str]] = {"dim": "dim"}

    def __init__(
        self,
        num_train: int = 2048,
        num_val: int = 512,
        dim: int = 32,
        condition: float = 100.0,
        noise: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if min(num_train, num_val, dim, batch_size) < 1 or condition < 1 or noise < 0:
            raise ConfigError(
                "synthetic regression needs positive sizes, condition >= 1 and noise >= 0",
                "check data.num_train, num_val, dim, condition, noise, batch_size",
            )
        if num_train <= dim:
            raise ConfigError(
                f"num_train {num_train} must exceed dim {dim} for a unique least-squares optimum",
                "raise data.num_train",
            )
        self.save_hyperparameters()
        g = torch.Generator().manual_seed(seed)
        scales = condition ** -torch.linspace(0, 1, dim)
        x = torch.randn(num_train + num_val, dim, generator=g) * scales
        w_true = torch.randn(dim, generator=g)
        y = x @ w_true + 0.5 + noise * torch.randn(num_train + num_val, generator=g)
        self.train_set = TensorBatchDataset(x[:num_train], y[:num_train])
        self.val_set = TensorBatchDataset(x[num_train:], y[num_train:])
        self.optimum = least_squares(x[:num_train], y[:num_train])

    @property
    def dim(self) -> int:
        return self.hparams.dim

    def loader(self, split: Split):
        """``val`` and ``test`` are the validation samples; ``predict``: them with their index
        (``prediction_names()["index"]`` names each row)."""
        if split == "train":
            return batch_loader(self.train_set, self.hparams.batch_size, shuffle=True, seed=self.hparams.seed)
        if split != "predict":
            return batch_loader(self.val_set, 4096, shuffle=False)
        x, y = self.val_set.tensors
        return batch_loader(TensorBatchDataset(x, y, torch.arange(len(x))), 4096, shuffle=False)

    def prediction_names(self) -> dict[str, list[str]]:
        """Each predicted row's position in the validation split (``NamedPredictions``)."""
        return {"index": [f"val:{i}" for i in range(len(self.val_set))]}
