"""The registry's AdamW and SGD-Nesterov against the papers' algorithms, written out here."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from recipes.modules.optim import OptimizerConfig, create_optimizer


def reference_adamw(params, grads_per_step, lrs, wds, betas=(0.9, 0.999), eps=1e-8):
    """Loshchilov & Hutter (ICLR 2019), Algorithm 2 with eta_t folded into lr_t:
    theta <- theta - lr_t * (m_hat / (sqrt(v_hat) + eps) + wd * theta), in float64."""
    b1, b2 = betas
    theta = [p.detach().double().clone() for p in params]
    m = [torch.zeros_like(t) for t in theta]
    v = [torch.zeros_like(t) for t in theta]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            g = g.double()
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            theta[i] = theta[i] - lrs[i] * (m_hat / (v_hat.sqrt() + eps) + wds[i] * theta[i])
    return theta


def reference_sgd_nesterov(params, grads_per_step, lrs, wds, momentum):
    """Sutskever et al. (2013) Nesterov momentum as torch (and most frameworks) write it:
    g' = g + wd*theta; b = mu*b + g'; theta <- theta - lr * (g' + mu*b)."""
    theta = [p.detach().double().clone() for p in params]
    buf = [None] * len(theta)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g.double() + wds[i] * theta[i]
            buf[i] = g.clone() if buf[i] is None else momentum * buf[i] + g
            theta[i] = theta[i] - lrs[i] * (g + momentum * buf[i])
    return theta


class TwoGroupNet(nn.Module):
    """Weights (decayed), biases and a LayerNorm (not decayed), and a head with its own lr multiplier."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(torch.tanh(self.norm(self.body(x))))


def _run(model, opt, steps=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [p for g in opt.param_groups for p in g["params"]]
    grads_per_step = []
    for _ in range(steps):
        x = torch.randn(8, 16, generator=gen)
        y = torch.randint(0, 4, (8,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        grads_per_step.append([p.grad.detach().clone() for p in params])
        opt.step()
    return params, grads_per_step


@pytest.mark.parametrize("implementation", ["auto", "fused", "foreach", "for_loop"])
def test_adamw_matches_paper(implementation):
    torch.manual_seed(0)
    model = TwoGroupNet()
    start = [p.detach().clone() for p in model.parameters()]
    cfg = OptimizerConfig(
        name="adamw",
        lr=0.01,
        weight_decay=0.1,
        betas=(0.9, 0.99),
        eps=1e-8,
        lr_mult={"head": 3.0},
        implementation=implementation,
    )
    opt = create_optimizer(model, cfg)
    assert len(opt.param_groups) == 4  # decay / no-decay x body / head
    if implementation in ("auto", "fused"):
        assert all(g["fused"] for g in opt.param_groups)  # the fast kernel is chosen by itself on CPU
    params, grads = _run(model, opt)
    lrs = [g["lr"] for g in opt.param_groups for _ in g["params"]]
    wds = [g["weight_decay"] for g in opt.param_groups for _ in g["params"]]
    assert sorted(set(wds)) == [0.0, 0.1] and sorted(set(lrs)) == [0.01, 0.03]
    # Replay the recorded gradients through the paper's algorithm from the same starting point.
    by_id = {id(p): s for p, s in zip(model.parameters(), start)}
    init = [by_id[id(p)] for p in params]
    expected = reference_adamw(init, grads, lrs, wds, betas=(0.9, 0.99), eps=1e-8)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach().double(), e, rtol=1e-5, atol=1e-6)


def test_adam_with_l2_is_not_adamw():
    """Adam's weight_decay is an L2 term that passes through 1/sqrt(v_hat): a different update."""
    torch.manual_seed(0)
    a, b = TwoGroupNet(), TwoGroupNet()
    b.load_state_dict(a.state_dict())
    opt_w = create_optimizer(a, OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.5))
    opt_l2 = create_optimizer(b, OptimizerConfig(name="adam", lr=0.01, weight_decay=0.5))
    _run(a, opt_w, steps=5)
    _run(b, opt_l2, steps=5)
    assert not torch.allclose(a.body.weight, b.body.weight, atol=1e-4)


def test_adamw_decay_scales_with_lr_and_spares_no_decay_group():
    """With zero gradients Adam's step is 0, so only decoupled decay acts: theta * (1 - lr*wd) per step."""
    model = TwoGroupNet()
    w0, b0 = model.body.weight.detach().clone(), model.body.bias.detach().clone()
    opt = create_optimizer(model, OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.2))
    for _ in range(3):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
    torch.testing.assert_close(model.body.weight.detach(), w0 * (1 - 0.1 * 0.2) ** 3)
    torch.testing.assert_close(model.body.bias.detach(), b0)


@pytest.mark.parametrize("implementation", ["auto", "for_loop"])
def test_sgd_nesterov_matches_reference(implementation):
    torch.manual_seed(1)
    model = TwoGroupNet()
    start = {id(p): p.detach().clone() for p in model.parameters()}
    cfg = OptimizerConfig(
        name="sgd",
        lr=0.05,
        weight_decay=1e-3,
        momentum=0.9,
        nesterov=True,
        lr_mult={"head": 0.5},
        implementation=implementation,
    )
    opt = create_optimizer(model, cfg)
    params, grads = _run(model, opt, steps=10, seed=1)
    lrs = [g["lr"] for g in opt.param_groups for _ in g["params"]]
    wds = [g["weight_decay"] for g in opt.param_groups for _ in g["params"]]
    expected = reference_sgd_nesterov([start[id(p)] for p in params], grads, lrs, wds, momentum=0.9)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach().double(), e, rtol=1e-5, atol=1e-6)


def test_reference_is_not_trivially_equal():
    """Guard on the references themselves: the bias correction matters at step 1 (m_hat / sqrt(v_hat) = sign(g))."""
    p = [torch.tensor([1.0, -2.0])]
    g = [[torch.tensor([0.5, -3.0])]]
    out = reference_adamw(p, g, lrs=[0.1], wds=[0.0], eps=0.0)[0]
    torch.testing.assert_close(out, torch.tensor([0.9, -1.9], dtype=torch.float64))
    assert math.isclose(float(out[0]), 0.9)
