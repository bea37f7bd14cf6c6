"""The recommendation recipe: real short fits on MovieLens 100K through the CLI, the ranking metrics
against hand-computed values, predict outputs and bad input, the popularity baseline, the sampled
protocol, DLRM's side features and a separate sparse optimizer for the embedding tables."""

from __future__ import annotations

import csv
import math

import lightning as L
import pytest
import torch

from recipes.__main__ import main
from recipes.data.recommendation.datamodule import InteractionsDataModule
from recipes.modules.errors import ConfigError
from recipes.modules.optim import OptimizerConfig, OptimizerSettings
from recipes.modules.recommendation.metrics import hit_rate, ndcg, target_rank
from recipes.modules.recommendation.ranking import RankingRecommender
from recipes.modules.recommendation.rating import RatingRecommender
from recipes.modules.recommendation.recommender import Recommender
from tests.conftest import CONFIGS, QUIET
from tests.test_image_fit import last_metrics
from tests.test_movielens import grouplens  # noqa: F401 (a fixture)

RATING = ["--config", str(CONFIGS / "recommendation.yaml"), *QUIET]
RANKING = ["--config", str(CONFIGS / "recommendation_ranking.yaml"), *QUIET]


def _trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def _model(dm: InteractionsDataModule, **kw) -> Recommender:
    if dm.task == "rating":
        kw["rating_mean"] = dm.rating_mean
    cls = RatingRecommender if dm.task == "rating" else RankingRecommender
    return cls(num_users=dm.num_users, num_items=dm.num_items, feature_sizes=dm.feature_sizes, **kw)


def test_ranking_metrics_by_hand():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [2.0, 2.0, 2.0, 2.0]])
    rank = target_rank(scores, torch.tensor([2, 0]))
    assert rank.tolist() == [1, 3]  # one item ahead; ties count against the target
    assert hit_rate(rank, 1).tolist() == [0, 0] and hit_rate(rank, 2).tolist() == [1, 0]
    assert ndcg(rank, 2).tolist() == pytest.approx([1 / math.log2(3), 0.0])
    exclude = torch.tensor([[False, True, False, False], [False, True, True, False]])
    rank = target_rank(scores, torch.tensor([2, 0]), exclude)
    assert rank.tolist() == [0, 1] and ndcg(rank, 10).tolist() == pytest.approx([1.0, 1 / math.log2(3)])


def test_rmse_and_mae_by_hand(grouplens, tmp_path):  # noqa: F811
    dm = InteractionsDataModule(root=str(grouplens), split="official", fold=1)  # test ratings: 4 and 5
    model = _model(dm, net="mf", clamp_ratings=False)
    torch.nn.init.zeros_(model.net.user.weight)
    with torch.no_grad():
        model.net.bias.fill_(3.0 - dm.rating_mean)  # every prediction is 3.0
    out = _trainer(tmp_path).test(model, dm, verbose=False)[0]
    assert out["test/rmse"] == pytest.approx(math.sqrt((1 + 4) / 2)) and out["test/mae"] == pytest.approx(1.5)


def test_rating_fit_beats_global_mean_and_predicts(tmp_path):
    root = tmp_path / "run"
    args = [*RATING, "--trainer.default_root_dir", str(root)]
    assert main(["fit", *args, "--trainer.max_epochs", "4"]) == 0
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    m = last_metrics(root)
    dm = InteractionsDataModule()
    test_ratings = dm.data.rating[dm.splits_index["test"]]
    global_mean_rmse = (test_ratings - dm.rating_mean).pow(2).mean().sqrt().item()  # about 1.13
    assert m["test/rmse"] < 0.96 < global_mean_rmse and m["test/mae"] < 0.77

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n196,242\n1,1\n1,1682\n")
    out = tmp_path / "scores.csv"
    assert (
        main(
            [
                "predict",
                *args,
                "--ckpt_path",
                "best",
                "--data.predict_pairs",
                str(pairs),
                "--predictions.output",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out)))
    assert [(r["user"], r["item"]) for r in rows] == [("196", "242"), ("1", "1"), ("1", "1682")]
    assert all(1.0 <= float(r["score"]) <= 5.0 for r in rows)

    out = tmp_path / "top.csv"
    assert (
        main(["predict", *args, "--ckpt_path", "best", "--data.predict_topk", "5", "--predictions.output", str(out)])
        == 0
    )
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 943 * 5 and [r["rank"] for r in rows[:5]] == ["1", "2", "3", "4", "5"]
    rated = {(dm.user_ids[u], dm.item_ids[i]) for u, i in zip(dm.data.user.tolist(), dm.data.item.tolist())}
    assert not any((int(r["user"]), int(r["item"])) in rated for r in rows)  # already-rated items excluded
    first = [float(r["score"]) for r in rows[:5]]
    assert first == sorted(first, reverse=True)

    bad = tmp_path / "bad.csv"
    bad.write_text("196,242\n99999,1\nnot,a,pair\n")
    out = tmp_path / "never.csv"
    assert (
        main(
            [
                "predict",
                *args,
                "--ckpt_path",
                "best",
                "--data.predict_pairs",
                str(bad),
                "--predictions.output",
                str(out),
            ]
        )
        == 2
    )
    assert not out.exists()


def test_bad_predict_rows_are_reported_by_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("196,242\n99999,1\n1,77777\n")
    assert (
        main(["predict", *RATING, "--trainer.default_root_dir", str(tmp_path), "--data.predict_pairs", str(bad)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("recipes:") and "line 2: unknown user 99999" in err and "line 3: unknown item 77777" in err


def test_ranking_fit_beats_chance_and_popularity_runs(tmp_path):
    root = tmp_path / "run"
    args = [*RANKING, "--trainer.default_root_dir", str(root), "--model.net", "mf", "--model.loss", "bpr"]
    assert main(["fit", *args, "--trainer.max_epochs", "3"]) == 0
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    mf = last_metrics(root)
    chance = 10 / 1600  # HR@10 of a random ranking over ~1,600 unrated items
    assert (
        math.isfinite(mf["test/ndcg@10"])
        and mf["test/hr@10"] > 8 * chance
        and 0 < mf["test/ndcg@10"] < mf["test/hr@10"]
    )
    pop_root = tmp_path / "pop"
    assert main(["test", *RANKING, "--trainer.default_root_dir", str(pop_root), "--model.net", "popularity"]) == 0
    assert last_metrics(pop_root)["test/hr@10"] > 8 * chance  # no fit needed: counts come from the training split


def test_sampled_protocol_is_labelled_and_easier(tmp_path):
    full = InteractionsDataModule(task="ranking", split="leave_last_out")
    sampled = InteractionsDataModule(task="ranking", split="leave_last_out", eval_protocol="sampled100")
    a = _trainer(tmp_path).test(_model(full, net="popularity"), full, verbose=False)[0]
    b = _trainer(tmp_path).test(_model(sampled, net="popularity"), sampled, verbose=False)[0]
    assert set(b) == {
        "test/hr@10_sampled100",
        "test/ndcg@10_sampled100",
        "test/hr@10_sampled100_cold",
        "test/ndcg@10_sampled100_cold",
    }
    assert b["test/hr@10_sampled100"] > 2 * a["test/hr@10"]  # 100 negatives is a far easier task than ~1,600


def test_dlrm_uses_side_features(tmp_path):
    dm = InteractionsDataModule()
    model = _model(dm, net="dlrm", embedding_l2=0.1, optimizer=OptimizerConfig(lr=0.005))
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=40, limit_val_batches=5)
    trainer.fit(model, dm)
    assert model.net.item_genres.sum(1).allclose(torch.ones(1682)) and model.net.user_categories.max() > 0
    assert trainer.callback_metrics["val/rmse"] < 1.05


def test_sparse_embeddings_with_their_own_optimizer(tmp_path):
    dm = InteractionsDataModule(batch_size=1024)
    model = _model(
        dm,
        net="mf",
        sparse_embeddings=True,
        embedding_optimizer=OptimizerSettings(name="sparse_adam", lr=0.01),
    )
    before = model.net.item.weight.detach().clone()
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(model, dm)
    (opt,) = trainer.optimizers  # one composite: the embedding split is a route to a fallback
    dense, sparse = (part.optimizer for part in opt.parts)
    assert type(dense).__name__ == "AdamW" and type(sparse).__name__ == "SparseAdam"
    assert [p for g in dense.param_groups for p in g["params"]] == [model.net.bias]
    tables = {m.weight for m in (model.net.user, model.net.item, model.net.user_bias, model.net.item_bias)}
    assert {p for g in sparse.param_groups for p in g["params"]} == tables
    assert not torch.equal(before, model.net.item.weight)  # the embedding optimizer stepped
    assert trainer.callback_metrics["val/rmse"] < 1.0
    with pytest.raises(ValueError, match="sparse_embeddings needs an optimizer"):
        _model(dm, net="mf", sparse_embeddings=True)


def test_autorec_sees_only_training_ratings_and_beats_global_mean(tmp_path):
    dm = InteractionsDataModule(batch_size=1024)
    model = _model(
        dm,
        net="autorec",
        net_kwargs={"hidden": 64},
        optimizer=OptimizerConfig(name="adam", lr=0.003, weight_decay=0.00125),
    )
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(model, dm)
    train = dm.train_interactions()
    expected = torch.zeros(dm.num_items, dm.num_users)
    expected[train["item"], train["user"]] = train["rating"].float()
    assert torch.equal(model.net.ratings, expected) and torch.equal(model.net.observed, expected > 0)
    for stage in ("val", "test"):  # every held-out pair is absent from the encoder's input
        rows = dm.splits_index[stage]
        assert not model.net.observed[dm.data.item[rows], dm.data.user[rows]].any()
    restored = _model(dm, net="autorec", net_kwargs={"hidden": 64})
    restored.load_state_dict(model.state_dict())  # the matrix travels with the weights
    assert torch.equal(restored.net.ratings, expected)
    out = _trainer(tmp_path).test(model, dm, verbose=False)[0]
    test_ratings = dm.data.rating[dm.splits_index["test"]]
    global_mean_rmse = (test_ratings - dm.rating_mean).pow(2).mean().sqrt().item()
    assert out["test/rmse"] < global_mean_rmse - 0.1
    scores = model.net.score_all(torch.tensor([0, 5]))  # decoding every item agrees with scoring the pairs
    assert scores.shape == (2, dm.num_items) and torch.allclose(
        scores[1, :7], model.net(torch.full((7,), 5), torch.arange(7)), atol=1e-5
    )


def test_each_task_module_trains_on_its_own_task(grouplens, tmp_path):  # noqa: F811
    """Rating and ranking are two modules with their own batches: the base alone, or a module on the other
    task's data, is one clear error."""
    with pytest.raises(ConfigError, match="Recommender is the base of the two recommendation tasks"):
        Recommender(num_users=3, num_items=3)
    dm = InteractionsDataModule(root=str(grouplens))  # rating data
    model = RankingRecommender(net="mf", num_users=dm.num_users, num_items=dm.num_items)
    with pytest.raises(ConfigError, match="data.task is rating, and RankingRecommender trains on ranking.*rating"):
        _trainer(tmp_path, max_steps=1).fit(model, dm)
