"""Optimizers and submissions for the benchmark's tests, importable by dotted path in Ray workers and in
benchmark worker processes: an SGD whose process dies (tests/test_benchmark_ray.py), and a submission that is
not the factory adapter (tests/test_benchmark_suite.py)."""

from __future__ import annotations

import functools
import os

import torch

from recipes.benchmark.submission import Budget, Submission


class DyingSGD(torch.optim.SGD):
    """SGD whose constructor ends its process at once (``os._exit(3)``: no exception, no cleanup), as an
    out-of-memory kill does; only ever build it in a process that may die."""

    @functools.wraps(torch.optim.SGD.__init__)  # the factory checks settings against SGD's signature
    def __init__(self, *args, **kwargs) -> None:
        os._exit(3)


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
