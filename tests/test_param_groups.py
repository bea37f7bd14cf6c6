"""Parameter groups: exactly the parameters the rule names, lr multipliers and layer-wise decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recipes.modules.errors import RecipeError
from recipes.modules.image.nets import ResNet18Small, SmallCNN
from recipes.modules.optim import GroupRules, OptimizerConfig, build_param_groups, create_optimizer


class TinyTransformer(nn.Module):
    """Embeddings, a stack of blocks, a head: the shape layer-wise decay is made for."""

    def __init__(self, n_layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.pos = nn.Parameter(torch.zeros(1, 8, 16))
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True) for _ in range(n_layers))
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 5)

    def no_weight_decay(self) -> set[str]:
        return {"pos"}


def _names(groups, wd: float) -> set[str]:
    return {n for g in groups if g.weight_decay == wd for n in g.names}


def test_cnn_no_decay_is_exactly_biases_and_norms():
    model = SmallCNN(widths=(8, 16))
    groups = build_param_groups(model, GroupRules(weight_decay=0.1))
    expected_no_decay = {
        n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) for n in (f"{n}.weight", f"{n}.bias")
    }
    expected_no_decay |= {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    assert _names(groups, 0.0) == expected_no_decay
    assert _names(groups, 0.1) == {n for n, p in model.named_parameters() if p.ndim >= 2}
    assert sum(len(g.params) for g in groups) == len(list(model.parameters()))


def test_model_hook_and_embedding_decay():
    model = TinyTransformer()
    groups = build_param_groups(model, GroupRules(weight_decay=0.1, embedding_weight_decay=0.0))
    no_decay = _names(groups, 0.0)
    assert "pos" in no_decay  # 3-D, excluded only by the model's no_weight_decay() hook
    assert "embed.weight" in no_decay  # the embedding rule, set apart from dense layers
    assert all("norm" in n or n.endswith("bias") or n in ("pos", "embed.weight") for n in no_decay)
    decayed = _names(groups, 0.1)
    assert "head.weight" in decayed and "layers.0.linear1.weight" in decayed
    groups = build_param_groups(model, GroupRules(weight_decay=0.1, embedding_weight_decay=0.01))
    assert _names(groups, 0.01) == {"embed.weight"}


def test_decay_1d_turns_the_rule_off():
    model = SmallCNN(widths=(8,))
    groups = build_param_groups(model, GroupRules(weight_decay=0.1, decay_1d=True))
    assert _names(groups, 0.1) == {n for n, _ in model.named_parameters()}


def test_lr_mult_longest_prefix_wins():
    model = ResNet18Small()
    opt = create_optimizer(model, OptimizerConfig(lr=1e-3, lr_mult={"net": 0.1, "net.fc": 10.0}))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.net.fc.weight)] == pytest.approx(1e-2)
    assert lr_of[id(model.net.conv1.weight)] == pytest.approx(1e-4)
    with pytest.raises(RecipeError, match="match no parameter"):
        create_optimizer(model, OptimizerConfig(lr_mult={"backbone": 0.1}))


def test_layer_decay_scales_by_depth():
    model = TinyTransformer(n_layers=3)
    groups = build_param_groups(model, GroupRules(weight_decay=0.0, layer_decay=0.5, layer_decay_root="layers"))
    scale = {n: g.lr_scale for g in groups for n in g.names}
    assert scale["head.weight"] == 1.0 and scale["norm.weight"] == 1.0
    assert scale["layers.2.linear1.weight"] == 0.5
    assert scale["layers.1.linear1.weight"] == 0.25
    assert scale["layers.0.linear1.weight"] == 0.125
    assert scale["embed.weight"] == 0.0625 and scale["pos"] == 0.0625
    with pytest.raises(RecipeError, match="not a submodule"):
        build_param_groups(model, GroupRules(layer_decay=0.5, layer_decay_root="encoder.layer"))


def test_frozen_parameters_are_left_out():
    model = SmallCNN(widths=(8,))
    model.features.requires_grad_(False)
    opt = create_optimizer(model, OptimizerConfig())
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in model.head.parameters()}


def test_hook_on_an_inner_network_is_prefixed():
    wrapper = nn.ModuleDict({"net": TinyTransformer()})
    groups = build_param_groups(wrapper, GroupRules(weight_decay=0.1))
    assert "net.pos" in _names(groups, 0.0) and "net.embed.weight" in _names(groups, 0.1)
