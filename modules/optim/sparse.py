"""A separate optimizer for embedding tables (e.g. SparseAdam or Adagrad for sparse gradients), built with
the shared factory: the model's parameters are split into two views and each view gets its own
``create_optimizer`` call, so the factory keeps no embedding-specific branch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from torch import nn

from recipes.modules.errors import ConfigError
from recipes.modules.optim import OptimizerConfig, SchedulerConfig, create_optimizer
from recipes.modules.optim.groups import embedding_param_names
from recipes.modules.optim.schedules import build_scheduler

if TYPE_CHECKING:
    import lightning as L

__all__ = ["ParameterSubset", "configure_split_optimization"]


class ParameterSubset(nn.Module):
    """A view of the named parameters of ``owner`` that ``names`` lists, for the optimizer factory.

    Names and submodules are the owner's, so the factory's rules (no decay for 1-D tensors,
    ``no_weight_decay()`` hooks, embedding weight decay) read exactly as they would on the whole model.
    """

    def __init__(self, owner: nn.Module, names: set[str]) -> None:
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # a view, not a child: not registered as a submodule
        self._names = set(names)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        for name, p in self._owner.named_parameters(prefix, recurse, remove_duplicate):
            if name in self._names:
                yield name, p

    def named_modules(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, nn.Module]]:
        return self._owner.named_modules(*args, **kwargs)


def configure_split_optimization(
    module: "L.LightningModule", dense: OptimizerConfig, embeddings: OptimizerConfig, scheduler: SchedulerConfig
) -> tuple[list, list]:
    """Two optimizers (dense parameters, embedding tables), each with the same lr schedule, for a module
    with ``automatic_optimization = False`` that steps both every batch."""
    if dense.schedule_free or embeddings.schedule_free:
        raise ConfigError(
            "schedule-free optimizers are not supported with a separate embedding optimizer",
            "pick e.g. adamw and sparse_adam",
        )
    emb = embedding_param_names(module)
    rest = {n for n, p in module.named_parameters() if p.requires_grad and n not in emb}
    if not emb:
        raise ConfigError(
            f"{type(module).__name__} has no embedding tables for model.embedding_optimizer",
            "set model.embedding_optimizer: null",
        )
    optimizers = [create_optimizer(ParameterSubset(module, emb), embeddings)]
    if rest:
        optimizers.insert(0, create_optimizer(ParameterSubset(module, rest), dense))
    total = int(module.trainer.estimated_stepping_batches)
    schedulers = [s for s in (build_scheduler(o, scheduler, total) for o in optimizers) if s is not None]
    return optimizers, schedulers
