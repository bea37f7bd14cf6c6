"""A submission that is not the factory adapter, for tests/test_benchmark_suite.py: it builds its own torch
optimizer and picks the batch size, and counts how often the harness asked it."""

from __future__ import annotations

import torch

from recipes.benchmark.submission import Budget, Submission


class PlainSGD(Submission):
    """torch SGD with momentum on every parameter, batch size 32, and a step count checked against the budget."""

    built = 0
    steps = 0

    def __init__(self, learning_rate: float = 0.1) -> None:
        super().__init__(learning_rate=learning_rate)
        self.learning_rate = learning_rate

    def batch_size(self, budget: Budget) -> int:
        return 32

    def configure_optimizers(self, module, budget: Budget):
        PlainSGD.built += 1
        assert budget.max_steps > 0 and budget.max_runtime > 0
        return torch.optim.SGD(module.parameters(), lr=self.learning_rate, momentum=0.9)

    def on_train_step_end(self, module) -> None:
        PlainSGD.steps += 1
