"""Initializers: measured statistics match theory; loaded weights are never touched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from recipes.modules.errors import RecipeError
from recipes.modules.image.nets import ResNet18Small
from recipes.modules.init import INITIALIZERS, InitConfig, apply_init, mark_pretrained


def _big_linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(1024, 2048)  # fan_in 1024, fan_out 2048, 2M samples


@pytest.mark.parametrize(
    ("cfg", "expected_std"),
    [
        (InitConfig(name="kaiming_normal"), math.sqrt(2 / 1024)),
        (InitConfig(name="kaiming_normal", mode="fan_out"), math.sqrt(2 / 2048)),
        (InitConfig(name="kaiming_uniform", nonlinearity="linear"), math.sqrt(1 / 1024)),
        (InitConfig(name="xavier_normal"), math.sqrt(2 / (1024 + 2048))),
        (InitConfig(name="xavier_uniform", gain=2.0), 2.0 * math.sqrt(2 / (1024 + 2048))),
        (InitConfig(name="lecun_normal"), math.sqrt(1 / 1024)),
        (InitConfig(name="normal", std=0.02), 0.02),
        (InitConfig(name="trunc_normal", std=0.02), 0.02 * 0.8796),  # a normal truncated at 2 sigma
        (InitConfig(name="orthogonal"), math.sqrt(1 / 2048)),  # rows of a 2048x1024 semi-orthogonal matrix
    ],
)
def test_weight_std_matches_theory(cfg, expected_std):
    layer = _big_linear()
    assert apply_init(layer, cfg) == 1
    std = layer.weight.std().item()
    assert abs(std - expected_std) / expected_std < 0.05, (cfg.name, std, expected_std)
    assert abs(layer.weight.mean().item()) < 0.05 * expected_std
    assert torch.count_nonzero(layer.bias) == 0


def test_orthogonal_is_orthogonal():
    layer = nn.Linear(64, 32)
    apply_init(layer, InitConfig(name="orthogonal"))
    torch.testing.assert_close(layer.weight @ layer.weight.T, torch.eye(32), atol=1e-5, rtol=0)


def test_trunc_normal_bounds_and_zeros():
    layer = _big_linear()
    apply_init(layer, InitConfig(name="trunc_normal", std=0.02))
    assert layer.weight.abs().max().item() <= 0.04 + 1e-7
    apply_init(layer, InitConfig(name="zeros"))
    assert torch.count_nonzero(layer.weight) == 0


def test_norms_and_embeddings_follow_the_rule():
    model = nn.Sequential(
        nn.Embedding(100, 32, padding_idx=0), nn.LayerNorm(32), nn.Conv1d(32, 32, 3), nn.BatchNorm1d(32)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    apply_init(model, InitConfig(name="normal", std=0.5))
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)
    assert torch.all(model[3].weight == 1) and torch.all(model[3].bias == 0)
    assert torch.all(model[0].weight[0] == 0) and 0.4 < model[0].weight[1:].std().item() < 0.6
    assert torch.all(model[2].bias == 0)


def test_default_keeps_pytorch_init():
    torch.manual_seed(0)
    a = nn.Linear(8, 8)
    before = a.weight.detach().clone()
    apply_init(a, InitConfig())
    assert torch.equal(before, a.weight)


def test_zero_init_residual_zeroes_last_bn_of_each_block():
    model = ResNet18Small()
    apply_init(model, InitConfig(name="kaiming_normal", mode="fan_out", zero_init_residual=True))
    blocks = [b for layer in (model.net.layer1, model.net.layer2, model.net.layer3, model.net.layer4) for b in layer]
    assert len(blocks) == 8
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in blocks)
    assert all(torch.all(b.bn1.weight == 1) for b in blocks)
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    block = model.net.layer1[0]
    h = torch.randn(2, 64, 14, 14)
    torch.testing.assert_close(block(h), torch.relu(h))  # identity branch only
    assert model(x).shape == (2, 10)


def test_pretrained_subtree_is_untouched_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16), nn.Linear(16, 16))
    torch.save(backbone.state_dict(), tmp_path / "weights.pt")
    fresh = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16), nn.Linear(16, 16))
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    model = nn.ModuleDict({"backbone": mark_pretrained(fresh), "head": nn.Linear(16, 4)})
    head_before = model["head"].weight.detach().clone()
    apply_init(model, InitConfig(name="normal", std=1.0))
    for k, v in torch.load(tmp_path / "weights.pt", weights_only=True).items():
        assert torch.equal(model["backbone"].state_dict()[k], v), k
    assert not torch.equal(head_before, model["head"].weight)


def test_checkpointed_weights_survive_a_different_init(tmp_path):
    from recipes.modules.image.classifier import ImageClassifier

    model = ImageClassifier(net="cnn", net_kwargs={"widths": [8]}, init=InitConfig(name="kaiming_normal"))
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    ckpt = torch.load(path, weights_only=True)  # plain hyperparameters: loads without unpickling code
    ckpt["hyper_parameters"]["init"] = {"name": "zeros"}
    restored = ImageClassifier(**ckpt["hyper_parameters"])
    restored.load_state_dict(ckpt["state_dict"])
    for k, v in model.state_dict().items():
        assert torch.equal(restored.state_dict()[k], v), k


def test_registry_and_errors():
    assert {
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "orthogonal",
        "trunc_normal",
        "lecun_normal",
        "normal",
        "zeros",
        "default",
    } <= set(INITIALIZERS)
    with pytest.raises(RecipeError, match="unknown initializer 'kaiming'.*kaiming_normal"):
        InitConfig(name="kaiming")
    with pytest.raises(RecipeError, match="unknown nonlinearity"):
        InitConfig(nonlinearity="swish")
