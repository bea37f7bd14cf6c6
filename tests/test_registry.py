"""The optimizer registry, parametrized over itself, and its error messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recipes.modules.errors import RecipeError
from recipes.modules.optim import OptimizerConfig, create_optimizer, get_optimizer_info, list_optimizers

TORCH_AND_SCHEDULEFREE = [i.name for i in list_optimizers() if i.source in ("torch.optim", "schedulefree")]
# A representative slice of the optional pytorch-optimizer collection (the rest is constructed below).
EXTRA = ["lion", "lamb", "adan", "prodigy", "soap", "adopt", "ademamix"]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _loss(model: nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    return nn.functional.cross_entropy(model(x), y)


def test_torch_optim_is_fully_registered():
    names = {i.name for i in list_optimizers()}
    for expected in [
        "sgd",
        "adam",
        "adamw",
        "nadam",
        "radam",
        "adamax",
        "adagrad",
        "adadelta",
        "rmsprop",
        "adafactor",
        "rprop",
        "asgd",
        "muon",
        "sparse_adam",
    ]:
        assert expected in names
    assert {"adamw_schedulefree", "sgd_schedulefree", "radam_schedulefree"} <= names


@pytest.mark.parametrize("name", TORCH_AND_SCHEDULEFREE + EXTRA)
def test_every_optimizer_builds_and_lowers_the_loss(name):
    if name not in {i.name for i in list_optimizers()}:
        pytest.fail(f"{name} is not registered: install recipes[optimizers]")
    model = _model()
    if name == "sparse_adam":  # dense gradients are rejected by design: it is for sparse embedding grads
        emb = nn.Embedding(10, 4, sparse=True)
        opt = create_optimizer(emb, OptimizerConfig(name=name, lr=0.1, weight_decay=0.0))
        emb(torch.tensor([1, 2])).sum().backward()
        before = emb.weight.detach().clone()
        opt.step()
        assert not torch.equal(before, emb.weight)
        return
    wd = 0.0 if name in ("rprop", "muon", "sparse_adam") else 0.01
    lr = {"adadelta": 1.0, "prodigy": 1.0}.get(name, 0.01)
    if name == "muon":  # Muon handles 2-D matrices only: the factory's no-decay 1-D group is then rejected
        model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
    opt = create_optimizer(model, OptimizerConfig(name=name, lr=lr, weight_decay=wd))
    if hasattr(opt, "train"):
        opt.train()
    start = _loss(model).item()
    for _ in range(30):
        opt.zero_grad()
        loss = _loss(model)
        loss.backward()
        opt.step()
    if hasattr(opt, "eval"):
        opt.eval()
    assert _loss(model).item() < start


def test_whole_pytorch_optimizer_collection_constructs():
    extra = [i for i in list_optimizers() if i.source == "pytorch_optimizer"]
    assert len(extra) > 50
    failures = []
    for info in extra:
        try:
            info.cls  # noqa: B018 - the lazy loader resolves the class
        except Exception as exc:  # pragma: no cover - reported below
            failures.append((info.name, exc))
    assert not failures


def test_unknown_name_lists_closest():
    with pytest.raises(RecipeError, match=r"unknown optimizer 'adamww'.*adamw"):
        OptimizerConfig(name="adamww")


def test_dotted_path_accepted():
    info = get_optimizer_info("torch.optim.AdamW")
    assert info.cls is torch.optim.AdamW
    with pytest.raises(RecipeError, match="not a torch.optim.Optimizer"):
        get_optimizer_info("torch.nn.Linear")
    with pytest.raises(RecipeError, match="cannot import"):
        get_optimizer_info("no_such_pkg.Opt")


def test_bad_values_fail_at_once():
    with pytest.raises(RecipeError, match="learning rate must be >= 0"):
        OptimizerConfig(lr=-1.0)
    with pytest.raises(RecipeError, match="takes no argument momentum"):
        create_optimizer(_model(), OptimizerConfig(name="adamw", momentum=0.9))
    with pytest.raises(RecipeError, match="has no weight decay"):
        create_optimizer(_model(), OptimizerConfig(name="sparse_adam", weight_decay=0.1))


def test_kwargs_reach_the_optimizer():
    opt = create_optimizer(_model(), OptimizerConfig(name="adamw", kwargs={"amsgrad": True}))
    assert opt.defaults["amsgrad"] is True
    opt = create_optimizer(_model(), OptimizerConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=True))
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
