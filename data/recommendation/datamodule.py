"""MovieLens 100K for rating prediction and top-K ranking, held in memory and batched by index.

Batches are dicts of tensors (``recipes.data.recommendation.interactions``):

* rating: ``user, item, rating`` for every stage;
* ranking, train: ``user, item`` (a positive) and ``negatives`` (B, num_negatives), drawn afresh for every
  batch from items the user has no training interaction with;
* ranking, val/test with ``eval_protocol: full``: ``user, item`` (the held-out item) and ``exclude``
  (B, I), the items ranked out of the candidates (training items; for test also validation items);
  with ``sampled100``: ``candidates`` (B, 100), negatives sampled once (seeded) from items the user never rated;
* predict: ``user, item, user_id, item_id`` for pairs, or ``user, user_id, exclude, item_ids, k`` for top-K.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor

from recipes.data.batching import batch_loader
from recipes.data.recommendation.encode import (
    Encoded,
    encode,
    item_texts,
    read_pairs,
    split_leave_last_out,
    split_random,
)
from recipes.data.recommendation.files import read_movielens
from recipes.data.recommendation.interactions import InteractionBatches, sample_negatives
from recipes.data.sources import existing_path
from recipes.modules.errors import ConfigError

__all__ = ["MovieLensDataModule"]


class MovieLensDataModule(L.LightningDataModule):
    """MovieLens 100K ratings (943 users, 1,682 movies) with user and movie side features.

    Args:
        task: rating (predict the 1-5 rating) or ranking (rank unseen items, implicit feedback).
        split: random (seeded 80/10/10), leave_last_out (each user's latest interaction is test, the one
            before validation) or official (GroupLens fold ``u{fold}.base/.test``; a seeded 10% of the
            base is validation).
        fold: the official fold, 1-5.
        eval_protocol: ranking evaluation: full (every item the user has not interacted with) or
            sampled100 (the held-out item against 100 sampled unrated items; logged as ``..._sampled100``).
        batch_size: training interactions per batch.
        eval_batch_size: validation/test/predict rows per batch (ranking scores all items per row).
        num_negatives: negatives sampled per positive for ranking training.
        seed: seed of the split, the shuffling and the negative samplers.
        root: a folder with the GroupLens files (u.data ...) or RecBole's (ml-100k.inter ...); None uses the
            copy inside the recbole wheel.
        predict_pairs: a CSV of raw ``user,item`` ids to score with ``predict``.
        predict_topk: with ``predict``, write the top this-many items per user, excluding items they rated.
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py, when both exist).
    model_links: ClassVar[dict[str, str]] = {
        "num_users": "num_users",
        "num_items": "num_items",
        "feature_sizes": "feature_sizes",
        "rating_mean": "rating_mean",
        "task": "objective",
    }

    def __init__(
        self,
        task: Literal["rating", "ranking"] = "rating",
        split: Literal["random", "leave_last_out", "official"] = "random",
        fold: int = 1,
        eval_protocol: Literal["full", "sampled100"] = "full",
        batch_size: int = 1024,
        eval_batch_size: int = 1024,
        num_negatives: int = 4,
        seed: int = 0,
        root: str | None = None,
        predict_pairs: str | None = None,
        predict_topk: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1 or num_negatives < 1 or not 1 <= fold <= 5:
            raise ConfigError("batch sizes and num_negatives must be >= 1 and fold in 1-5", "fix the data settings")
        if predict_pairs and predict_topk:
            raise ConfigError("predict_pairs and predict_topk are both set", "set one of them")
        if predict_topk is not None and predict_topk < 1:
            raise ConfigError(f"predict_topk must be >= 1, got {predict_topk}", "e.g. --data.predict_topk 10")
        if root is not None:
            existing_path(
                root,
                "data.root",
                "folder",
                "point it at an extracted ml-100k.zip (u.data, u.user, u.item) or RecBole's atomic files "
                "(ml-100k.inter ...), or leave it unset to use the copy in the recbole wheel",
            )
        if predict_pairs is not None:
            existing_path(predict_pairs, "data.predict_pairs", "file", "give a CSV with one user,item pair a line")
        self.task, self.split, self.fold, self.eval_protocol = task, split, fold, eval_protocol
        self.batch_size, self.eval_batch_size, self.num_negatives, self.seed = (
            batch_size,
            eval_batch_size,
            num_negatives,
            seed,
        )
        self.root, self.predict_pairs, self.predict_topk = root, predict_pairs, predict_topk
        # Read now: the CLI links the vocabulary sizes into the model before setup() runs.
        self.tables = read_movielens(root)
        self.encoded: Encoded = encode(self.tables)
        self.events = self._events()
        self.splits_index = self._split()
        train = self.splits_index["train"]
        self.seen_train = self._mask(train)
        self.seen_all = self._mask(torch.arange(len(self.events["user"])))
        self.datasets: dict[str, InteractionBatches] = {}

    # --- what the model is built from (linked by the CLI) -------------------------------------------
    @property
    def num_users(self) -> int:
        return len(self.encoded.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.encoded.item_ids)

    @property
    def feature_sizes(self) -> dict[str, int]:
        return dict(self.encoded.feature_sizes)

    @property
    def rating_mean(self) -> float:
        return float(self.events["rating"][self.splits_index["train"]].mean())

    def side_features(self) -> dict[str, Tensor]:
        """Per-user and per-item features plus ``item_popularity`` (training interactions per item)."""
        return {**self.encoded.features, "item_popularity": self.item_train_counts().float()}

    def item_train_counts(self) -> Tensor:
        """Training interactions per item index (cold items are those with few; see ``Recommender.cold_threshold``)."""
        return torch.bincount(self.events["item"][self.splits_index["train"]], minlength=self.num_items)

    def item_texts(self) -> list[str]:
        """Each item's title, release year and genres as one text, by item index (for text towers)."""
        return item_texts(self.tables, self.encoded.item_ids)

    def train_interactions(self) -> dict[str, Tensor]:
        """``user, item, rating`` of the training split only: what a net that reads the rating matrix
        (AutoRec) may see; validation and test ratings never leave their loaders."""
        return self._pairs(self.splits_index["train"])

    # --- splits -----------------------------------------------------------------------------------
    def _events(self) -> dict[str, Tensor]:
        t = self.tables
        if self.split == "official":
            if self.fold not in t.folds:
                raise ConfigError(
                    f"split official needs u{self.fold}.base and u{self.fold}.test in {t.folder}",
                    "pass --data.root to an extracted ml-100k.zip, or use split random / leave_last_out",
                )
            base, test = t.folds[self.fold]
            parts = [self.encoded.index(base, f"u{self.fold}.base"), self.encoded.index(test, f"u{self.fold}.test")]
            self._n_base = len(base.user)
            return {
                "user": torch.cat([p[0] for p in parts]),
                "item": torch.cat([p[1] for p in parts]),
                "rating": torch.from_numpy(np.concatenate([base.rating, test.rating])),
                "timestamp": torch.from_numpy(np.concatenate([base.timestamp, test.timestamp])),
            }
        user, item = self.encoded.index(t.ratings, "the ratings file")
        return {
            "user": user,
            "item": item,
            "rating": torch.from_numpy(t.ratings.rating),
            "timestamp": torch.from_numpy(t.ratings.timestamp),
        }

    def _split(self) -> dict[str, Tensor]:
        n = len(self.events["user"])
        if self.split == "random":
            train, val, test = split_random(n, self.seed)
        elif self.split == "leave_last_out":
            train, val, test = split_leave_last_out(self.events["user"], self.events["timestamp"])
        else:
            base = torch.randperm(self._n_base, generator=torch.Generator().manual_seed(self.seed))
            n_val = round(0.1 * self._n_base)
            train, val, test = base[n_val:].sort().values, base[:n_val].sort().values, torch.arange(self._n_base, n)
        return {"train": train, "val": val, "test": test}

    def _mask(self, rows: Tensor) -> Tensor:
        mask = torch.zeros(self.num_users, self.num_items, dtype=torch.bool)
        mask[self.events["user"][rows], self.events["item"][rows]] = True
        return mask

    # --- datasets ---------------------------------------------------------------------------------
    def _pairs(self, rows: Tensor) -> dict[str, Tensor]:
        return {k: self.events[k][rows] for k in ("user", "item", "rating")}

    def _ranking_eval(self, stage: str) -> InteractionBatches:
        rows = self.splits_index[stage]
        tensors = {k: self.events[k][rows] for k in ("user", "item")}
        if self.eval_protocol == "sampled100":
            gen = torch.Generator().manual_seed(self.seed + (1 if stage == "val" else 2))
            tensors["candidates"] = sample_negatives(self.seen_all, tensors["user"], 100, gen)
            return InteractionBatches(tensors)
        exclude = (
            self.seen_train
            if stage == "val"
            else self._mask(torch.cat([self.splits_index["train"], self.splits_index["val"]]))
        )
        return InteractionBatches(tensors, lookups={"exclude": (exclude, "user")})

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.task == "rating":
            self.datasets = {s: InteractionBatches(self._pairs(self.splits_index[s])) for s in ("train", "val", "test")}
        else:
            if bool(self.seen_train.all(dim=1).any()):
                raise ConfigError(
                    "a user has rated every item: no negatives to sample",
                    "use a split that holds out some items per user",
                )
            rows = self.splits_index["train"]
            train = {k: self.events[k][rows] for k in ("user", "item")}
            self.datasets = {
                "train": InteractionBatches(train, negatives=self.num_negatives, seen=self.seen_train, seed=self.seed),
                "val": self._ranking_eval("val"),
                "test": self._ranking_eval("test"),
            }
        self.datasets["predict"] = self._predict_set()

    def _predict_set(self) -> InteractionBatches:
        user_ids, item_ids = torch.from_numpy(self.encoded.user_ids), torch.from_numpy(self.encoded.item_ids)
        if self.predict_topk:
            users = torch.arange(self.num_users)
            k = torch.tensor(min(self.predict_topk, self.num_items))
            return InteractionBatches(
                {"user": users, "user_id": user_ids, "row": users},
                lookups={"exclude": (self.seen_all, "user")},
                constants={"item_ids": item_ids, "k": k},
            )
        if self.predict_pairs:
            user, item = read_pairs(self.predict_pairs, self.encoded)
            tensors = {"user": user, "item": item}
        else:  # the test split, with the true rating beside each score
            tensors = self._pairs(self.splits_index["test"])
        rows = torch.arange(len(tensors["user"]))  # each pair's line, so rows from several processes merge in order
        return InteractionBatches(
            {**tensors, "user_id": user_ids[tensors["user"]], "item_id": item_ids[tensors["item"]], "row": rows}
        )

    def train_dataloader(self):
        return batch_loader(self.datasets["train"], self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self):
        return batch_loader(self.datasets["val"], self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return batch_loader(self.datasets["test"], self.eval_batch_size, shuffle=False)

    def predict_dataloader(self):
        return batch_loader(self.datasets["predict"], self.eval_batch_size, shuffle=False)
