"""The shared optimizer factory: registry, parameter groups, schedules and the Lightning glue."""

from recipes.modules.optim.composite import CompositeOptimizer
from recipes.modules.optim.factory import RunFacts, configure_optimization, create_optimizer
from recipes.modules.optim.groups import GroupRules, build_param_groups, no_decay_names
from recipes.modules.optim.registry import OptimizerInfo, get_optimizer_info, list_optimizers, register_optimizer
from recipes.modules.optim.schedules import SCHEDULES, SchedulerConfig, build_scheduler, lr_multiplier
from recipes.modules.optim.settings import OptimizerConfig, OptimizerSettings, SwitchConfig

__all__ = [
    "CompositeOptimizer",
    "OptimizerConfig",
    "OptimizerSettings",
    "SwitchConfig",
    "RunFacts",
    "configure_optimization",
    "create_optimizer",
    "GroupRules",
    "build_param_groups",
    "no_decay_names",
    "OptimizerInfo",
    "get_optimizer_info",
    "list_optimizers",
    "register_optimizer",
    "SCHEDULES",
    "SchedulerConfig",
    "build_scheduler",
    "lr_multiplier",
]
