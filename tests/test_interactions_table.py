"""A user's interaction table: MovieLens 25M/1M, RecBole and Amazon layouts, ids of any type, the data's own rating
scale, implicit feedback, temporal splits, bad rows named by line, the ids kept in checkpoints, and the same
tensors as the built-in MovieLens path when ML-100K is written out as a ratings.csv."""

from __future__ import annotations

import csv

import pytest
import torch

from benchmarks.own_data import write_ml100k_csv
from recipes.__main__ import main
from recipes.data.recommendation.datamodule import InteractionsDataModule
from recipes.data.recommendation.splits import split_temporal
from recipes.modules.errors import RecipeError
from recipes.modules.recommendation.nets import build_rec_net
from tests.conftest import CONFIGS, QUIET
from tests.test_image_fit import last_metrics

ROWS = [
    ("u1", "0528881469", 4.0, 100),
    ("u1", "B00001", 2.5, 300),
    ("u2", "0528881469", 9.0, 200),
    ("u3", "B00002", 7.0, 50),
]


def test_ml100k_as_ratings_csv_gives_the_builtin_tensors(tmp_path):
    builtin = InteractionsDataModule()
    table = InteractionsDataModule(interactions=str(write_ml100k_csv(tmp_path / "ratings.csv")))
    assert (table.num_users, table.num_items) == (builtin.num_users, builtin.num_items) == (943, 1682)
    assert table.user_ids.as_list() == builtin.user_ids.as_list()
    for name in ("user", "item", "rating", "timestamp"):
        assert torch.equal(getattr(table.data, name), getattr(builtin.data, name)), name
    for split in ("train", "val", "test"):
        assert torch.equal(table.splits_index[split], builtin.splits_index[split])
    assert table.rating_mean == builtin.rating_mean and table.rating_range == [1.0, 5.0]


@pytest.mark.parametrize(
    "name,text,columns",
    [
        ("ratings.csv", "userId,movieId,rating,timestamp\n{rows}", None),
        ("ratings.dat", "{rows}", None),  # ML-1M: no header, '::'
        ("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n{rows}", None),
        ("amazon.csv", "{rows}", {"item": "f0", "user": "f1", "rating": "f2", "timestamp": "f3"}),
        ("reviews.tsv", "reviewerID\tasin\toverall\tunixReviewTime\n{rows}", None),
    ],
)
def test_layouts_ids_and_the_datas_own_scale(tmp_path, name, text, columns):
    sep = {"ratings.dat": "::", "ml.inter": "\t", "reviews.tsv": "\t"}.get(name, ",")
    order = (1, 0, 2, 3) if name == "amazon.csv" else (0, 1, 2, 3)
    rows = "\n".join(sep.join(str(r[i]) for i in order) for r in ROWS) + "\n"
    path = tmp_path / name
    path.write_text(text.format(rows=rows))
    dm = InteractionsDataModule(
        interactions=str(path), columns=columns, split="temporal", val_fraction=0.25, test_fraction=0.25
    )
    assert dm.user_ids.as_list() == ["u1", "u2", "u3"]
    assert dm.item_ids.as_list() == ["0528881469", "B00001", "B00002"]  # an ASIN keeps its leading zero
    assert dm.data.rating.tolist() == [4.0, 2.5, 9.0, 7.0] and dm.data.timestamp.tolist() == [100, 300, 200, 50]
    assert dm.splits_index["test"].tolist() == [1] and dm.splits_index["val"].tolist() == [2]  # the latest last
    assert dm.rating_range == [4.0, 7.0]  # the training ratings' own scale, not 1-5


def test_temporal_split_never_trains_on_the_future():
    ts = torch.tensor([5, 1, 9, 3, 7, 2, 8, 6, 4, 10])
    train, val, test = split_temporal(ts, (0.2, 0.2))
    assert ts[train].max() < ts[val].min() and ts[val].max() < ts[test].min() and len(test) == len(val) == 2


def test_bad_tables_are_named_by_line(tmp_path):
    cases = [
        ("userId,movieId,rating\n1,2,3\n1,3\n", "line 3: expected 3 fields"),
        ("userId,movieId,rating\n1,2,3\n1,3,good\n", "line 3: rating 'good' is not a number"),
        ("userId,movieId,rating\n1,2,3\n,3,4\n", "line 3: no user"),
        ("name,title,score\nann,x,3\n", "has no user column that its header names"),
    ]
    for body, message in cases:
        (tmp_path / "r.csv").write_text(body)
        with pytest.raises(RecipeError, match=message):
            InteractionsDataModule(interactions=str(tmp_path / "r.csv"))
    (tmp_path / "implicit.csv").write_text("user,item\na,x\na,y\nb,x\n")
    with pytest.raises(RecipeError, match="no rating column, which task rating predicts.*recommendation_ranking"):
        InteractionsDataModule(interactions=str(tmp_path / "implicit.csv"))
    with pytest.raises(RecipeError, match="split leave_last_out needs when each interaction happened"):
        InteractionsDataModule(interactions=str(tmp_path / "implicit.csv"), task="ranking", split="leave_last_out")
    with pytest.raises(RecipeError, match="data.columns has no role stars"):
        InteractionsDataModule(interactions=str(tmp_path / "implicit.csv"), task="ranking", columns={"stars": "x"})


def test_autorec_refuses_a_matrix_that_cannot_fit_and_names_the_nets_that_scale():
    with pytest.raises(RecipeError, match=r"autorec holds the dense .* 59,047 x 162,541 .*use .*mf, neumf"):
        build_rec_net("autorec", num_users=162_541, num_items=59_047)
    assert build_rec_net("mf", num_users=162_541, num_items=59_047).user.num_embeddings == 162_541


def test_implicit_string_ids_train_rank_predict_and_guard_their_checkpoint(tmp_path):
    """Implicit feedback with string ids through the CLI: ranking metrics, top-K under the data's own ids, and a
    checkpoint that refuses data with other ids."""
    rows = [(f"user{u}", f"sku-{(u * 7 + k * 3) % 40:03d}", 1000 * u + k) for u in range(60) for k in range(6)]
    path = tmp_path / "log.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("visitorid", "itemid", "timestamp"), *rows])
    root = tmp_path / "run"
    args = [
        "--config",
        str(CONFIGS / "recommendation_ranking.yaml"),
        *QUIET,
        "--data.interactions",
        str(path),
        "--model.net",
        "mf",
        "--model.net_kwargs",
        "{dim: 8}",
        "--data.batch_size",
        "64",
        "--trainer.max_epochs",
        "2",
        "--trainer.default_root_dir",
        str(root),
    ]
    assert main(["fit", *args]) == 0 and main(["test", *args, "--ckpt_path", "best"]) == 0
    assert 0 <= last_metrics(root)["test/hr@10"] <= 1
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["recipes_ids"]["user"][:2] == ["user0", "user1"] and ckpt["recipes_ids"]["item"][0] == "sku-000"
    out = tmp_path / "top.csv"
    assert (
        main(["predict", *args, "--ckpt_path", "best", "--data.predict_topk", "3", "--predictions.output", str(out)])
        == 0
    )
    top = list(csv.DictReader(open(out)))
    seen = {(u, i) for u, i, _ in rows}
    assert len(top) == 60 * 3 and top[0]["user"] == "user0" and top[0]["item"].startswith("sku-")
    assert not any((r["user"], r["item"]) in seen for r in top)
    other = tmp_path / "other.csv"
    other.write_text(path.read_text().replace("user59,", "someone,"))
    assert main(["test", *args, "--data.interactions", str(other), "--ckpt_path", "best"]) == 2


def test_item_texts_come_from_an_item_table(tmp_path):
    (tmp_path / "r.csv").write_text("user,item,rating\na,p1,4\nb,p2,3\nb,p3,5\n")
    (tmp_path / "items.csv").write_text("item_id,title,genres\np2,Second,Drama\np1,First,\n")
    dm = InteractionsDataModule(interactions=str(tmp_path / "r.csv"), items=str(tmp_path / "items.csv"))
    assert dm.item_texts() == ["First", "Second. Drama", "unknown"]  # p3 has no row: counted in the log
    only = InteractionsDataModule(
        interactions=str(tmp_path / "r.csv"), items=str(tmp_path / "items.csv"), item_text_columns=["genres"]
    )
    assert only.item_texts() == ["unknown", "Drama", "unknown"]
    with pytest.raises(RecipeError, match="gives the items no text.*data.items"):
        InteractionsDataModule(interactions=str(tmp_path / "r.csv")).item_texts()
