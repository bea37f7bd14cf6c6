"""The text item tower: item texts from both MovieLens layouts, the pretrained MiniLM encoder left untouched
by init, layer-wise learning rates, freezing that really stops and restarts gradient flow, a short real fit
through the CLI with the cold-item metrics, export to a directory transformers loads, and bad input."""

from __future__ import annotations

import csv
import logging
import math
import os

import lightning as L
import pytest
import torch
from transformers import AutoModel

from benchmarks.common import logged_metrics
from recipes.__main__ import main
from recipes.data.recommendation.datamodule import InteractionsDataModule
from recipes.data.recommendation.files import read_movielens
from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, create_optimizer
from recipes.modules.pretrained import FinetuneConfig, resolve_pretrained
from recipes.modules.recommendation.ranking import RankingRecommender
from recipes.modules.recommendation.rating import RatingRecommender
from recipes.modules.recommendation.recommender import Recommender
from tests.conftest import CONFIGS, QUIET, run_recipes
from tests.test_movielens import grouplens  # noqa: F401 (a fixture)

os.environ["HF_HUB_OFFLINE"] = "1"  # the encoder must come from the installed package, never the hub
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TINY = {"max_length": 8, "dim": 8, "grad_items": 4}


def _model(dm: InteractionsDataModule, **kw) -> Recommender:
    kw.setdefault("net_kwargs", TINY)
    if dm.task == "rating":
        kw["rating_mean"] = dm.rating_mean
    cls = RatingRecommender if dm.task == "rating" else RankingRecommender
    kw.setdefault("net", "text_tower")
    return cls(num_users=dm.num_users, num_items=dm.num_items, **kw)


def test_item_texts_from_both_layouts(grouplens):  # noqa: F811
    dm = InteractionsDataModule()
    texts = dm.item_texts()
    assert len(texts) == 1682 and texts[0] == "Toy Story (1995). Animation, Children's, Comedy"
    assert read_movielens().titles[11] == "Seven (Se7en)" and texts[10] == "Seven (Se7en) (1995). Crime, Thriller"
    t = read_movielens(grouplens)  # u.item: the year is cut from the title and taken from the date column
    assert t.titles[10] == "Film 10" and t.titles[50] == "Caf\xe9"
    texts = InteractionsDataModule(root=str(grouplens)).item_texts()
    assert texts[0] == "Film 10 (1995). Action, Comedy" and texts[2] == "Film 30. unknown"


def test_encoder_weights_survive_init_bit_for_bit(small_movielens):
    dm = InteractionsDataModule(root=str(small_movielens))
    model = _model(dm, init=InitConfig(name="normal", std=0.5))
    reference = AutoModel.from_pretrained(resolve_pretrained(MINILM))
    ours = model.net.text.state_dict()
    assert ours.keys() <= reference.state_dict().keys() and len(ours) > 90
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in ours.items())
    assert model.net.item_proj.weight.std().item() == pytest.approx(0.5, rel=0.1)  # the fresh head was initialized
    assert model.backbones == ["net.text"]


def test_layerwise_learning_rates(small_movielens):
    dm = InteractionsDataModule(root=str(small_movielens))
    model = _model(dm)
    d, lr, n = 0.7, 1e-3, 6
    opt = create_optimizer(
        model, OptimizerConfig(lr=lr, weight_decay=0.1, layer_decay=d, layer_decay_root="net.text.encoder.layer")
    )
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        g = group_of[id(p)]
        if name.startswith("net.text.encoder.layer."):
            expected = d ** (n - int(name.split(".")[4]))
        elif name.startswith("net.text.embeddings."):
            expected = d ** (n + 1)
        else:
            expected = 1.0  # the head: projection, ID and user embeddings
        assert g["lr"] == pytest.approx(lr * expected), name
        no_decay = p.ndim <= 1 or name in (
            "net.user_bias.weight",
            "net.item_bias.weight",
        )  # biases, LayerNorm, (N, 1) bias tables
        assert g["weight_decay"] == (0.0 if no_decay else 0.1), name


class _Probe(L.Callback):
    """Per optimizer step: whether the encoder got a gradient, and its weights after the step."""

    def __init__(self) -> None:
        self.grads: list[bool] = []
        self.weights: list[torch.Tensor] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.grads.append(pl_module.net.text.encoder.layer[0].attention.self.query.weight.grad is not None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.weights.append(pl_module.net.text.encoder.layer[0].attention.self.query.weight.detach().clone())


def test_freeze_stops_then_restarts_gradient_flow(small_movielens, tmp_path):
    dm = InteractionsDataModule(root=str(small_movielens), batch_size=32)
    model = _model(
        dm,
        finetune=FinetuneConfig(freeze_steps=2),
        optimizer=OptimizerConfig(lr=1e-3, weight_decay=0.1),
        scheduler={"name": "none"},
    )
    before = model.net.text.encoder.layer[0].attention.self.query.weight.detach().clone()
    head_before = model.net.item_proj.weight.detach().clone()
    probe = _Probe()
    trainer = L.Trainer(
        max_steps=4,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, dm)
    assert probe.grads == [False, False, True, True]
    assert torch.equal(probe.weights[0], before) and torch.equal(probe.weights[1], before)  # no decay either
    assert not torch.equal(probe.weights[2], before) and not torch.equal(probe.weights[3], probe.weights[2])
    assert not torch.equal(model.net.item_proj.weight, head_before)  # the head trained all along
    assert all(p.requires_grad for p in model.net.text.parameters())


def test_cli_fit_test_export_and_cold_metrics(small_movielens, tmp_path, caplog):
    """The commands in-process (test_package runs the installed ones); Lightning's log lines, which do not
    propagate to the root logger, are read from its own logger."""
    lightning_log = logging.getLogger("lightning.pytorch")
    lightning_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    try:
        _fit_test_export(small_movielens, tmp_path, caplog)
    finally:
        lightning_log.removeHandler(caplog.handler)


def _fit_test_export(small_movielens, tmp_path, caplog) -> None:
    root, out = tmp_path / "run", tmp_path / "exported"
    args = [
        "--config",
        str(CONFIGS / "recommendation_text_tower.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(root),
        "--data.root",
        str(small_movielens),
        "--data.batch_size",
        "64",
        "--model.net_kwargs",
        "{max_length: 12, dim: 16, grad_items: 8}",
        "--model.finetune.freeze_epochs",
        "1",
        "--model.cold_threshold",
        "10",
        "--model.optimizer.lr_mult",
        "{net.text: 1.0}",
    ]
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "4"]) == 0
    assert "unfroze 101 tensors under net.text at epoch 1" in caplog.text
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    m = logged_metrics(root)  # fit and test logs together
    assert "val/rmse_cold" in m and 0.5 < m["test/rmse"] < 1.5
    preds = tmp_path / "preds.csv"  # the test split's predictions, scored again by hand on the cold items
    assert main(["predict", *args, "--ckpt_path", "best", "--predictions.output", str(preds)]) == 0
    dm = InteractionsDataModule(root=str(small_movielens))
    index = {int(raw): i for i, raw in enumerate(dm.item_ids.as_list())}
    rows = [r for r in csv.DictReader(open(preds)) if dm.item_train_counts()[index[int(r["item"])]] <= 10]
    assert len(rows) > 0
    rmse = math.sqrt(sum((float(r["score"]) - float(r["rating"])) ** 2 for r in rows) / len(rows))
    assert m["test/rmse_cold"] == pytest.approx(rmse, rel=1e-4)
    assert (
        main(["export", *args, "--ckpt_path", "last", "--out_dir", str(out)]) == 0
    )  # last: after the fine-tuned epoch
    loaded = AutoModel.from_pretrained(out)
    state = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    key = "encoder.layer.5.output.dense.weight"
    assert torch.equal(loaded.state_dict()[key], state[f"net.text.{key}"])
    original = AutoModel.from_pretrained(resolve_pretrained(MINILM)).state_dict()[key]
    assert not torch.equal(loaded.state_dict()[key], original)  # fine-tuned, not the package's weights
    assert (out / "tokenizer.json").is_file()


def test_ranking_logs_cold_metrics_for_an_id_only_net(small_movielens, tmp_path):
    dm = InteractionsDataModule(root=str(small_movielens), task="ranking", split="leave_last_out")
    model = RankingRecommender(net="popularity", num_users=dm.num_users, num_items=dm.num_items, cold_threshold=30)
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    out = trainer.test(model, dm, verbose=False)[0]
    counts = dm.item_train_counts()
    held_out = dm.data.item[dm.splits_index["test"]]
    cold = counts[held_out] <= 30
    scores = counts.float().expand(len(held_out), -1)  # popularity, ranked by hand over the same candidates
    seen = torch.cat([dm.splits_index["train"], dm.splits_index["val"]])
    mask = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    mask[dm.data.user[seen], dm.data.item[seen]] = True  # a dense mask, by hand
    exclude = mask[dm.data.user[dm.splits_index["test"]]]
    ahead = (scores >= scores.gather(1, held_out.unsqueeze(1))) & ~exclude
    ahead[torch.arange(len(held_out)), held_out] = False
    hits = (ahead.sum(1) < 10).float()
    assert 0 < int(cold.sum()) < len(held_out)
    assert out["test/hr@10_cold"] == pytest.approx(hits[cold].mean().item()) and out["test/hr@10"] == pytest.approx(
        hits.mean().item()
    )


def test_bad_input(small_movielens, tmp_path):
    no_titles = tmp_path / "no_titles"
    no_titles.mkdir()
    for name in ("ml-100k.inter", "ml-100k.user"):
        (no_titles / name).write_text((small_movielens / name).read_text())
    rows = [line.split("\t") for line in (small_movielens / "ml-100k.item").read_text().splitlines()]
    (no_titles / "ml-100k.item").write_text(
        "\n".join("\t".join([r[0], *r[2:]]) for r in rows) + "\n"
    )  # no movie_title column
    args = [
        "--config",
        str(CONFIGS / "recommendation_text_tower.yaml"),
        *QUIET,
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--data.root",
        str(no_titles),
        "--trainer.max_epochs",
        "1",
    ]
    bad = run_recipes("fit", *args)
    assert bad.returncode == 2 and "hold no movie titles" in bad.stderr.strip().splitlines()[-1]
    dm = InteractionsDataModule(root=str(small_movielens))
    with pytest.raises(ValueError, match="has no pretrained backbone"):
        _model(dm, net="mf", net_kwargs={}, finetune=FinetuneConfig(freeze_epochs=1))
    with pytest.raises(ValueError, match="cold_threshold must be >= 0"):
        _model(dm, cold_threshold=-1)
    with pytest.raises(ValueError, match="not available"):
        _model(dm, net_kwargs={"pretrained": "no-such-org/no-such-model"})
