"""Composite optimizers: routing parameters to a main optimizer and a fallback, switching optimizers at a
step, and the state that resumes either; each checked against torch's own optimizers stepped by hand."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from recipes.modules.errors import RecipeError
from recipes.modules.optim import (
    CompositeOptimizer,
    OptimizerConfig,
    RunFacts,
    SchedulerConfig,
    build_scheduler,
    create_optimizer,
)
from recipes.modules.optim.routing import hidden_matrix_names, output_head_names, route_parameters


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv2d(1, 3, 3)
        self.norm = nn.LayerNorm(12)
        self.hidden = nn.Linear(12, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h = self.conv(x).mean(dim=(2, 3))  # (n, 3)
        h = torch.cat([h, self.embed(tokens).flatten(1)[:, :9]], dim=1)
        return self.head(torch.relu(self.hidden(self.norm(h))))


def _loss(model: nn.Module, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, tokens = torch.randn(16, 1, 5, 5, generator=g), torch.randint(0, 10, (16, 3), generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return nn.functional.cross_entropy(model(x, tokens), y)


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: range, sched=None) -> None:
    for i in steps:
        opt.zero_grad()
        _loss(model, i).backward()
        opt.step()
        if sched is not None:
            sched.step()


def test_hidden_matrices_go_to_the_main_optimizer_the_rest_to_the_fallback():
    model = Net()
    assert output_head_names(model) == {"head.weight", "head.bias"}
    assert hidden_matrix_names(model) == {"conv.weight", "hidden.weight"}
    routes = route_parameters(model, {"hidden": "fallback", "head.weight": "main"})
    assert {n for n, r in routes.items() if r == "main"} == {"conv.weight", "head.weight"}
    assert route_parameters(model, {"": "main", "embed": "fallback"})["norm.weight"] == "main"
    with pytest.raises(RecipeError, match="route names \\['nope'\\] match no trainable parameter"):
        route_parameters(model, {"nope": "main"})


def test_muon_with_adamw_fallback_equals_the_two_torch_optimizers_by_hand():
    """Muon on the hidden Linear and on the conv filter as a (out, in*kh*kw) matrix, AdamW on the rest."""
    model, ref = Net(), Net()
    cfg = OptimizerConfig(name="muon", lr=0.02, weight_decay=0.0, fallback={"name": "adamw", "lr": 0.003})
    opt = create_optimizer(model, cfg)
    assert isinstance(opt, CompositeOptimizer) and [type(p.optimizer).__name__ for p in opt.parts] == ["Muon", "AdamW"]
    assert {g["name"] for g in opt.param_groups} == {"muon/decay", "adamw/no_decay", "adamw/decay"}

    conv2d = nn.Parameter(ref.conv.weight.detach().clone().view(3, -1))
    muon = torch.optim.Muon([ref.hidden.weight, conv2d], lr=0.02, weight_decay=0.0)
    rest = [p for n, p in ref.named_parameters() if n not in ("hidden.weight", "conv.weight")]
    no_decay = [p for n, p in ref.named_parameters() if p.ndim <= 1]
    adamw = torch.optim.AdamW(
        [{"params": no_decay, "weight_decay": 0.0}, {"params": [ref.embed.weight, ref.head.weight]}],
        lr=0.003,
        weight_decay=0.01,
    )
    assert len(rest) == len(no_decay) + 2
    _train(model, opt, range(5))
    for i in range(5):
        muon.zero_grad(), adamw.zero_grad()
        ref.conv.weight.data = conv2d.data.view_as(ref.conv.weight)
        _loss(ref, i).backward()
        conv2d.grad = ref.conv.weight.grad.reshape(3, -1)
        muon.step(), adamw.step()
        ref.conv.weight.grad = None
    ref.conv.weight.data = conv2d.data.view_as(ref.conv.weight)
    for (name, a), b in zip(model.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert not torch.equal(model.conv.weight, Net().conv.weight)  # the conv filter did move


def test_conv_filters_in_channels_last_layout_take_the_same_muon_steps():
    """A channels-last conv filter cannot be viewed as (out, in*kh*kw); it is flattened in its own memory order,
    and its gradient the same way, so Muon moves it exactly as it moves the contiguous filter."""

    def net() -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))

    plain, nhwc = net(), net().to(memory_format=torch.channels_last)
    assert not nhwc[0].weight.is_contiguous()
    cfg = OptimizerConfig(name="muon", lr=0.02, weight_decay=0.0, fallback={"name": "adamw", "lr": 0.003})
    for model in (plain, nhwc):
        opt = create_optimizer(model, cfg)
        for i in range(4):
            g = torch.Generator().manual_seed(i)
            x, y = torch.randn(8, 2, 5, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y).backward()
            opt.step()
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(plain[0].weight, net()[0].weight)
    for (name, a), b in zip(plain.named_parameters(), nhwc.parameters()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_each_part_keeps_its_peak_lr_under_the_one_schedule():
    model = Net()
    cfg = OptimizerConfig(name="muon", lr=0.02, fallback={"name": "adamw", "lr": 0.002})
    opt = create_optimizer(model, cfg)
    sched = build_scheduler(opt, SchedulerConfig(name="cosine", warmup_steps=2), total_steps=10)
    _train(model, opt, range(4), sched)
    factor = sched.get_last_lr()[0] / 0.02  # the multiplier the schedule set for step 4
    _train(model, opt, range(4, 5))  # each part reads it before it steps
    lrs = {type(p.optimizer).__name__: sorted({g["lr"] for g in p.optimizer.param_groups}) for p in opt.parts}
    assert lrs == {"Muon": [pytest.approx(0.02 * factor)], "AdamW": [pytest.approx(0.002 * factor)]}
    assert 0 < factor < 1


def test_state_dict_round_trip_continues_bit_equal():
    cfg = OptimizerConfig(name="muon", lr=0.02, fallback={"name": "adamw", "lr": 0.003})
    a = Net()
    opt_a = create_optimizer(a, cfg)
    _train(a, opt_a, range(3))
    b = copy.deepcopy(a)
    opt_b = create_optimizer(b, cfg)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    _train(a, opt_a, range(3, 6))
    _train(b, opt_b, range(3, 6))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    other = create_optimizer(Net(), OptimizerConfig(name="adamw", switch={"name": "sgd", "at_step": 2}))
    with pytest.raises(ValueError, match="parts \\['fallback', 'main'\\]"):
        other.load_state_dict(opt_a.state_dict())


def test_switch_runs_adam_then_a_fresh_sgd_and_frees_adams_state():
    model, ref = Net(), Net()
    cfg = OptimizerConfig(
        name="adam",
        lr=0.01,
        weight_decay=0.0,
        switch={"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "at_step": 3},
    )
    opt = create_optimizer(model, cfg)
    adam = torch.optim.Adam(ref.parameters(), lr=0.01)
    sgd = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt, range(3))
    _train(ref, adam, range(3))
    assert opt.parts[0].optimizer.state and not opt.parts[1].optimizer.state
    _train(model, opt, range(3, 7))
    _train(ref, sgd, range(3, 7))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(model.parameters(), ref.parameters()))
    assert not opt.parts[0].optimizer.state and opt.parts[1].optimizer.state and opt.steps == 7


def test_switch_at_a_fraction_of_the_run_and_under_a_schedule():
    model = Net()
    cfg = OptimizerConfig(name="adamw", lr=0.01, switch={"name": "sgd", "lr": 0.5, "at_fraction": 0.5})
    opt = create_optimizer(model, cfg, facts=RunFacts(total_steps=10))
    assert opt.parts[0].stop == opt.parts[1].start == 5
    sched = build_scheduler(opt, SchedulerConfig(name="linear"), total_steps=10)
    _train(model, opt, range(8), sched)
    factor = sched.get_last_lr()[0] / 0.01
    _train(model, opt, range(8, 9))
    assert sorted({g["lr"] for g in opt.parts[1].optimizer.param_groups}) == [pytest.approx(0.5 * factor)]
    with pytest.raises(RecipeError, match="needs the run's total_steps"):
        create_optimizer(Net(), cfg)


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"name": "muon", "route": {"norm": "main"}}, "takes matrices only, but route sends it"),
        ({"name": "adamw", "switch": {"name": "muon", "at_step": 1}}, "takes hidden matrices only"),
        ({"name": "adamw", "switch": {"name": "sgd"}}, "exactly one of at_step and at_fraction"),
        ({"name": "adamw", "route": {"head": "fallback"}}, "route sends parameters to the fallback, but none"),
        ({"name": "muon", "fallback": {"name": "adamw_schedulefree"}}, "cannot be one part of a composite"),
        ({"name": "adamw", "weight_decay": 0.1, "weight_decay_norm": 0.05}, "both weight_decay and weight_decay_norm"),
        ({"name": "sgd", "fallback": {"name": "adamww"}}, "unknown optimizer 'adamww'"),
    ],
)
def test_bad_composites_are_one_line(cfg, match):
    with pytest.raises(RecipeError, match=match):
        create_optimizer(Net(), OptimizerConfig(**cfg))


def test_unset_weight_decay_is_none_for_optimizers_without_it_and_001_for_the_rest():
    opt = create_optimizer(Net(), OptimizerConfig(name="rprop"))
    assert all("weight_decay" not in g for g in opt.param_groups)
    opt = create_optimizer(Net(), OptimizerConfig(name="adamw"))
    assert sorted({g["weight_decay"] for g in opt.param_groups}) == [0.0, 0.01]
    with pytest.raises(RecipeError, match="has no weight decay"):
        create_optimizer(Net(), OptimizerConfig(name="rprop", weight_decay=0.1))


def test_normalized_weight_decay_is_lambda_norm_sqrt_b_over_B_T():
    facts = RunFacts(total_steps=470, batch_size=128, train_size=60000)  # about one epoch of Fashion-MNIST
    opt = create_optimizer(Net(), OptimizerConfig(name="adamw", weight_decay_norm=0.05), facts=facts)
    epochs = 470 * 128 / 60000
    expected = 0.05 * (128 / (60000 * epochs)) ** 0.5
    assert max(g["weight_decay"] for g in opt.param_groups) == pytest.approx(expected)
    assert expected == pytest.approx(0.05 / 470**0.5)
    with pytest.raises(RecipeError, match="weight_decay_norm needs the run's batch_size"):
        create_optimizer(Net(), OptimizerConfig(name="adamw", weight_decay_norm=0.05))


def test_a_model_taking_optimizer_gets_the_resolved_decay_and_refuses_grouping_rules():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    opt = create_optimizer(model, OptimizerConfig(name="adammini", weight_decay=0.05))
    assert type(opt).__name__ == "AdamMini" and {g["weight_decay"] for g in opt.param_groups} <= {0.05, 0.0}
    assert 0.05 in {g["weight_decay"] for g in opt.param_groups}
    with pytest.raises(RecipeError, match="groups the model's parameters itself, so lr_mult cannot apply"):
        create_optimizer(model, OptimizerConfig(name="adammini", lr_mult={"0": 0.1}))
