"""Optimizers for the Ray executor's tests (tests/test_benchmark_ray.py), importable by dotted path in Ray
workers and in benchmark worker processes."""

from __future__ import annotations

import functools
import os

import torch


class DyingSGD(torch.optim.SGD):
    """SGD whose constructor ends its process at once (``os._exit(3)``: no exception, no cleanup), as an
    out-of-memory kill does; only ever build it in a process that may die."""

    @functools.wraps(torch.optim.SGD.__init__)  # the factory checks settings against SGD's signature
    def __init__(self, *args, **kwargs) -> None:
        os._exit(3)
