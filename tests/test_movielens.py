"""MovieLens data: both file layouts, clear errors for missing or corrupt files, reproducible splits,
vectorized negative sampling over sparse seen sets and the predict table's bad rows."""

from __future__ import annotations

import pytest
import torch

from recipes.data.recommendation.datamodule import InteractionsDataModule
from recipes.data.recommendation.encode import encode
from recipes.data.recommendation.files import read_movielens
from recipes.data.recommendation.interactions import sample_negatives
from recipes.data.recommendation.seen import SeenItems
from recipes.data.recommendation.splits import split_leave_last_out, split_random
from recipes.data.recommendation.table_source import read_pairs
from recipes.modules.errors import RecipeError

U_DATA = "1\t10\t5\t100\n1\t20\t3\t300\n1\t30\t4\t200\n2\t10\t2\t50\n2\t30\t1\t60\n2\t40\t4\t70\n3\t20\t5\t10\n"
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|writer|32067\n"
FLAGS = ["0"] * 19


def _item(i: int, date: str, genres: list[int]) -> str:
    flags = ["1" if n in genres else "0" for n in range(19)]
    return "|".join([str(i), f"Film {i} (1995)", date, "", "http://x"] + flags)


@pytest.fixture
def grouplens(tmp_path):
    (tmp_path / "u.data").write_text(U_DATA)
    (tmp_path / "u.user").write_text(U_USER)
    items = [
        _item(10, "01-Jan-1995", [1, 5]),
        _item(20, "01-Jan-1977", [8]),
        _item(30, "", [0]),
        _item(40, "15-Mar-1998", [16]),
        _item(50, "01-Jan-1960", [3]),
    ]
    (tmp_path / "u.item").write_bytes(("\n".join(items) + "\n").replace("Film 50", "Caf\xe9").encode("latin-1"))
    (tmp_path / "u1.base").write_text("".join(U_DATA.splitlines(keepends=True)[:5]))
    (tmp_path / "u1.test").write_text("".join(U_DATA.splitlines(keepends=True)[5:]))
    return tmp_path


def test_grouplens_layout_is_read(grouplens):
    t = read_movielens(grouplens)
    assert list(t.ratings.user) == [1, 1, 1, 2, 2, 2, 3] and list(t.ratings.rating) == [5, 3, 4, 2, 1, 4, 5]
    assert t.users[2] == (53, "F", "other")
    assert t.items[10] == (1995, ("Action", "Comedy")) and t.items[30] == (None, ("unknown",))
    assert set(t.folds) == {1}
    enc = encode(t)
    assert list(enc.item_ids) == [10, 20, 30, 40, 50]  # item 50 has no rating but is in u.item
    f = enc.features
    assert f["item_genres"][0].tolist()[1] == 1 and f["item_genres"][0].sum() == 2
    assert f["item_year"].tolist() == [7, 4, 0, 10, 3]  # 1995, 1970s, unknown, 1998, 1960s
    assert f["user_age"].tolist() == [2, 6, 1] and f["user_gender"].tolist() == [1, 2, 1]
    dm = InteractionsDataModule(root=str(grouplens), split="official", fold=1, task="rating")
    assert len(dm.splits_index["test"]) == 2 and dm.num_items == 5


def test_recbole_layout_is_the_real_dataset():
    dm = InteractionsDataModule()
    assert (dm.num_users, dm.num_items, len(dm.data)) == (943, 1682, 100_000)
    assert dm.feature_sizes == {"age": 8, "gender": 3, "occupation": 22, "year": 11, "genre": 19}
    assert 3.5 < dm.rating_mean < 3.56 and dm.rating_range == [1.0, 5.0]
    with pytest.raises(RecipeError, match="u1.base"):
        InteractionsDataModule(split="official")  # RecBole ships no official folds


def test_missing_and_corrupt_files_name_the_file(grouplens, tmp_path):
    with pytest.raises(RecipeError, match="neither u.data nor ml-100k.inter.*pip install --no-deps recbole==1.2.1"):
        read_movielens(tmp_path / "nowhere")
    (grouplens / "u.user").unlink()
    with pytest.raises(RecipeError, match=r"u\.user is missing"):
        read_movielens(grouplens)
    (grouplens / "u.user").write_text(U_USER)
    (grouplens / "u.data").write_text(U_DATA + "4\t10\tfive\t1\n")
    with pytest.raises(RecipeError, match=r"u\.data line 8 is corrupt"):
        read_movielens(grouplens)


def test_random_split_is_seeded_and_disjoint():
    a, b, c = split_random(1000, seed=3), split_random(1000, seed=3), split_random(1000, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[2], c[2])
    assert [len(x) for x in a] == [800, 100, 100]
    assert torch.cat(a).sort().values.tolist() == list(range(1000))


def test_leave_last_out_takes_each_users_latest():
    dm = InteractionsDataModule(task="ranking", split="leave_last_out")
    user, ts = dm.data.user, dm.data.timestamp
    test, val, train = dm.splits_index["test"], dm.splits_index["val"], dm.splits_index["train"]
    assert len(test) == len(val) == 943 and len(train) == 100_000 - 2 * 943
    assert sorted(user[test].tolist()) == list(range(943)) and sorted(user[val].tolist()) == list(range(943))
    by_user = lambda rows: torch.zeros(943, dtype=torch.long).index_put_((user[rows],), ts[rows])  # noqa: E731
    latest_train = torch.zeros(943, dtype=torch.long).scatter_reduce(0, user[train], ts[train], "amax")
    assert (by_user(test) >= by_user(val)).all() and (by_user(val) >= latest_train).all()
    again = split_leave_last_out(user, ts)
    assert torch.equal(again[2], test) and torch.equal(again[1], val)


def test_seen_items_match_a_dense_mask():
    g = torch.Generator().manual_seed(0)
    user, item = torch.randint(0, 7, (60,), generator=g), torch.randint(0, 11, (60,), generator=g)
    dense = torch.zeros(7, 11, dtype=torch.bool)
    dense[user, item] = True
    seen = SeenItems(user, item, 7, 11)
    users = torch.tensor([3, 0, 6, 3, 5])
    assert torch.equal(seen[users], dense[users]) and torch.equal(seen.counts(), dense.sum(1))
    every = torch.arange(11)
    assert torch.equal(seen.contains(users.unsqueeze(1), every.unsqueeze(0)), dense[users])


def test_negatives_avoid_seen_items():
    user = torch.tensor([0] * 7 + [1] * 4)
    item = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 2, 4, 6])
    seen = SeenItems(user, item, 3, 8)  # user 0 has one unseen item: 7; user 1 has seen the even ones
    neg = sample_negatives(seen, torch.tensor([0, 1, 2, 0]), 50, torch.Generator().manual_seed(0))
    assert neg.shape == (4, 50) and (neg[0] == 7).all() and (neg[3] == 7).all() and (neg[1] % 2 == 1).all()
    dm = InteractionsDataModule(task="ranking", split="leave_last_out", num_negatives=5)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["negatives"].shape == (1024, 5)
    assert not dm.seen("train").contains(batch["user"].unsqueeze(1), batch["negatives"]).any()


def test_predict_pairs_bad_rows_are_named(tmp_path):
    dm = InteractionsDataModule()
    users, items = dm.user_ids, dm.item_ids
    good = tmp_path / "good.csv"
    good.write_text("user,item\n196,242\n1,1\n")
    user, item = read_pairs(good, users, items)
    assert [users[i] for i in user] == [196, 1] and [items[i] for i in item] == [242, 1]
    short = tmp_path / "short.csv"
    short.write_text("user,item\n196,242\n196\n")
    with pytest.raises(RecipeError, match="short.csv line 3: expected 2 fields"):
        read_pairs(short, users, items)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n196,242\n1,abc\n")
    with pytest.raises(RecipeError, match="1 bad rows: line 3: item 'abc' is not an integer id"):
        read_pairs(bad, users, items)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("196,242\n9999,1\n1,5000\n")
    with pytest.raises(RecipeError, match="2 bad rows: line 2: unknown user 9999; line 3: unknown item 5000"):
        read_pairs(unknown, users, items)
