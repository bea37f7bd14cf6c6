"""Interactions for rating prediction and top-K ranking: a user's table (``interactions``) or MovieLens 100K,
split, held as tensors and batched by index.

Batches are dicts of tensors (``recipes.data.recommendation.interactions``):

* rating: ``user, item, rating`` for every stage;
* ranking, train: ``user, item`` (a positive) and ``negatives`` (B, num_negatives), drawn afresh for every
  batch from items the user has no training interaction with;
* ranking, val/test with ``eval_protocol: full``: ``user, item`` (the held-out item) and ``exclude``
  (B, I), the items ranked out of the candidates (training items; for test also validation items), built
  for the batch's users alone; with ``sampled100``: ``candidates`` (B, 100), negatives sampled once (seeded)
  from items the user never interacted with;
* predict: ``user, item, row`` for pairs (and ``rating`` for the test split), or ``user, exclude, k, row``
  for top-K. Indices are written out as the data's own ids (``prediction_names``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal, Sequence

import torch
from torch import Tensor

from recipes.data.batching import batch_loader
from recipes.data.datamodule import Split, TaskDataModule
from recipes.data.recommendation.encode import movielens_interactions
from recipes.data.recommendation.events import IdVocab, Interactions
from recipes.data.recommendation.interactions import InteractionBatches, sample_negatives
from recipes.data.recommendation.seen import SeenItems
from recipes.data.recommendation.splits import split_leave_last_out, split_random, split_temporal
from recipes.data.recommendation.table_source import read_interactions, read_item_texts, read_pairs
from recipes.data.sources import existing_path
from recipes.modules.errors import ConfigError, DataError

__all__ = ["InteractionsDataModule"]

log = logging.getLogger(__name__)
TABLE_FIX = "give a CSV/TSV/Parquet/.dat table of user,item[,rating[,timestamp]] rows"


class InteractionsDataModule(TaskDataModule):
    """User-item interactions, from a table or MovieLens 100K, split for rating prediction or ranking.

    Args:
        task: rating (predict the rating) or ranking (rank unseen items; implicit feedback: every interaction is
            a positive, and a table needs no rating column).
        interactions: a table of the user's interactions: CSV, TSV, Parquet, MovieLens ``ratings.dat`` (``::``)
            or a RecBole ``.inter`` file; ids of any type. None: MovieLens 100K (``root``).
        columns: which column holds each of ``user``, ``item``, ``rating`` and ``timestamp`` (null for none),
            when the header does not say it (``userId``, ``item_id``, ``asin``, ``overall``... are recognized).
        items: a table describing the items (an id column and text columns) for text towers.
        item_id_column: the id column of ``items``; None: the one named like an item id, else the first.
        item_text_columns: the columns of ``items`` joined into each item's text; None: all but the id.
        root: with no ``interactions``: a folder with MovieLens 100K (GroupLens' u.data ... or RecBole's
            ml-100k.inter ...); None uses the copy inside the recbole wheel.
        split: random (seeded shares), leave_last_out (each user's latest interaction is test, the one before
            validation), temporal (the latest interactions overall are test, those before validation) or
            official (MovieLens' fold ``u{fold}.base/.test``; a seeded share of the base is validation).
        fold: the official fold, 1-5.
        val_fraction: share of the interactions for validation (random, temporal, and official's base).
        test_fraction: share for test (random, temporal).
        eval_protocol: ranking evaluation: full (every item the user has not interacted with) or
            sampled100 (the held-out item against 100 sampled unrated items; logged as ``..._sampled100``).
        batch_size: training interactions per batch.
        eval_batch_size: validation/test/predict rows per batch (ranking scores all items per row).
        num_negatives: negatives sampled per positive for ranking training.
        num_workers: loader processes; 0 gathers batches in the training process (tensors in memory: cheap).
        seed: seed of the split, the shuffling and the negative samplers.
        predict_pairs: a table of the data's own ``user,item`` ids to score with ``predict``.
        predict_topk: with ``predict``, write the top this-many items per user, excluding items they rated.
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py, when both exist).
    model_links: ClassVar[dict[str, str]] = {
        "num_users": "num_users",
        "num_items": "num_items",
        "feature_sizes": "feature_sizes",
        "rating_mean": "rating_mean",
        "rating_range": "rating_range",
    }

    def __init__(
        self,
        task: Literal["rating", "ranking"] = "rating",
        interactions: str | None = None,
        columns: dict[str, str | None] | None = None,
        items: str | None = None,
        item_id_column: str | None = None,
        item_text_columns: list[str] | None = None,
        root: str | None = None,
        split: Literal["random", "leave_last_out", "temporal", "official"] = "random",
        fold: int = 1,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        eval_protocol: Literal["full", "sampled100"] = "full",
        batch_size: int = 1024,
        eval_batch_size: int = 1024,
        num_negatives: int = 4,
        num_workers: int = 0,
        seed: int = 0,
        predict_pairs: str | None = None,
        predict_topk: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1 or num_negatives < 1 or not 1 <= fold <= 5 or num_workers < 0:
            raise ConfigError(
                "batch sizes and num_negatives must be >= 1, fold in 1-5 and num_workers >= 0",
                "fix the data settings",
            )
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                "val_fraction and test_fraction must be in [0, 1) and sum below 1",
                "fix data.val_fraction / test_fraction",
            )
        if predict_pairs and predict_topk:
            raise ConfigError("predict_pairs and predict_topk are both set", "set one of them")
        if predict_topk is not None and predict_topk < 1:
            raise ConfigError(f"predict_topk must be >= 1, got {predict_topk}", "e.g. --data.predict_topk 10")
        if interactions is not None and root is not None:
            raise ConfigError("data.interactions and data.root are both set", "give one source of interactions")
        if interactions is None and (columns or items):
            raise ConfigError("data.columns and data.items describe a data.interactions table", "set data.interactions")
        if root is not None:
            existing_path(
                root,
                "data.root",
                "folder",
                "point it at an extracted ml-100k.zip (u.data, u.user, u.item) or RecBole's atomic files "
                "(ml-100k.inter ...), or leave it unset to use the copy in the recbole wheel",
            )
        for key, value in (("interactions", interactions), ("items", items), ("predict_pairs", predict_pairs)):
            if value is not None:
                existing_path(
                    value, f"data.{key}", "file", TABLE_FIX if key != "predict_pairs" else "a user,item table"
                )
        self.task, self.split, self.fold, self.eval_protocol = task, split, fold, eval_protocol
        self.fractions = (val_fraction, test_fraction)
        self.batch_size, self.eval_batch_size, self.num_negatives, self.seed = (
            batch_size,
            eval_batch_size,
            num_negatives,
            seed,
        )
        self.num_workers, self.interactions = num_workers, interactions
        self.predict_pairs, self.predict_topk = predict_pairs, predict_topk
        # Read now: the CLI links the vocabulary sizes into the model before setup() runs.
        self.data = self._read(interactions, columns, items, item_id_column, item_text_columns, root)
        self.splits_index = self._split()
        if task == "rating" and self.data.rating is None:
            raise DataError(
                f"{self.data.source} has no rating column, which task rating predicts",
                "name it with data.columns.rating, or rank (implicit feedback): --config recommendation_ranking",
            )
        self._seen: dict[str, SeenItems] = {}
        self.datasets: dict[str, InteractionBatches] = {}

    def _read(
        self,
        interactions: str | None,
        columns: dict[str, str | None] | None,
        items: str | None,
        item_id_column: str | None,
        item_text_columns: list[str] | None,
        root: str | None,
    ) -> Interactions:
        if interactions is None:
            return movielens_interactions(root, self.fold if self.split == "official" else None)
        if self.split == "official":
            raise ConfigError(
                "split official is MovieLens 100K's folds", "use split random, leave_last_out or temporal"
            )
        data = read_interactions(existing_path(interactions, "data.interactions", "file", TABLE_FIX), columns)
        if items is not None:
            data.texts = read_item_texts(
                existing_path(items, "data.items", "file", TABLE_FIX), data.item_ids, item_id_column, item_text_columns
            )
            missing = sum(t == "unknown" for t in data.texts)
            if missing:
                log.warning(
                    "%s describes %d of the %d items; the rest read 'unknown'",
                    items,
                    len(data.texts) - missing,
                    len(data.texts),
                )
        return data

    # --- what the model is built from (linked by the CLI) -------------------------------------------
    @property
    def num_users(self) -> int:
        return len(self.data.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.data.item_ids)

    @property
    def feature_sizes(self) -> dict[str, int]:
        return dict(self.data.feature_sizes)

    @property
    def user_ids(self) -> IdVocab:
        return self.data.user_ids

    @property
    def item_ids(self) -> IdVocab:
        return self.data.item_ids

    def _train_ratings(self) -> Tensor | None:
        return None if self.data.rating is None else self.data.rating[self.splits_index["train"]]

    @property
    def rating_mean(self) -> float:
        ratings = self._train_ratings()
        return 0.0 if ratings is None else float(ratings.double().mean())

    @property
    def rating_range(self) -> list[float] | None:
        """The lowest and highest training rating: predictions are clamped to the data's own scale."""
        ratings = self._train_ratings()
        return None if ratings is None else [float(ratings.min()), float(ratings.max())]

    # --- what the model reads from the data (recipes.modules.recommendation.data.InteractionData) ------
    def side_features(self) -> dict[str, Tensor]:
        """Per-user and per-item features plus ``item_popularity`` (training interactions per item)."""
        return {**self.data.features, "item_popularity": self.item_train_counts().float()}

    def item_train_counts(self) -> Tensor:
        """Training interactions per item index (cold items are those with few; see ``Recommender.cold_threshold``)."""
        return torch.bincount(self.data.item[self.splits_index["train"]], minlength=self.num_items)

    def item_texts(self) -> list[str]:
        """Each item's text, by item index (for text towers)."""
        if self.data.texts is None and self.interactions is None:
            raise DataError(
                f"the MovieLens files in {self.data.source} hold no movie titles, which item texts need",
                "use GroupLens u.item or a RecBole ml-100k.item with a movie_title column (the recbole wheel has one)",
            )
        if self.data.texts is None:
            raise DataError(
                f"{self.data.source} gives the items no text",
                "give data.items: a table of item ids and text columns (titles, genres...)",
            )
        return self.data.texts

    def train_interactions(self) -> dict[str, Tensor]:
        """``user, item, rating`` of the training split only: what a net that reads the rating matrix
        (AutoRec) may see; validation and test ratings never leave their loaders."""
        return self._pairs(self.splits_index["train"])

    # --- splits -----------------------------------------------------------------------------------
    def _split(self) -> dict[str, Tensor]:
        d, n = self.data, len(self.data)
        if self.split in ("leave_last_out", "temporal") and d.timestamp is None:
            raise DataError(
                f"split {self.split} needs when each interaction happened, and {d.source} has no timestamp column",
                "name it with data.columns.timestamp, or use --data.split random",
            )
        if self.split == "random":
            train, val, test = split_random(n, self.seed, self.fractions)
        elif self.split == "leave_last_out":
            train, val, test = split_leave_last_out(d.user, d.timestamp)
        elif self.split == "temporal":
            train, val, test = split_temporal(d.timestamp, self.fractions)
        else:
            assert d.fixed_split is not None
            base = d.fixed_split["train"]
            perm = base[torch.randperm(len(base), generator=torch.Generator().manual_seed(self.seed))]
            n_val = round(self.fractions[0] * len(base))
            train, val, test = perm[n_val:].sort().values, perm[:n_val].sort().values, d.fixed_split["test"]
        if len(train) == 0:
            raise ConfigError(
                f"split {self.split} leaves no training interaction", "use more data or smaller fractions"
            )
        return {"train": train, "val": val, "test": test}

    def seen(self, name: str) -> SeenItems:
        """The interactions of ``train``, ``train+val`` or ``all``, built once when first asked for."""
        if name not in self._seen:
            parts = {"train": ["train"], "train+val": ["train", "val"], "all": ["train", "val", "test"]}[name]
            rows = torch.cat([self.splits_index[p] for p in parts])
            self._seen[name] = SeenItems(self.data.user[rows], self.data.item[rows], self.num_users, self.num_items)
        return self._seen[name]

    # --- datasets ---------------------------------------------------------------------------------
    def _pairs(self, rows: Tensor) -> dict[str, Tensor]:
        out = {"user": self.data.user[rows], "item": self.data.item[rows]}
        if self.data.rating is not None:
            out["rating"] = self.data.rating[rows]
        return out

    def _ranking_eval(self, stage: str) -> InteractionBatches:
        rows = self.splits_index[stage]
        tensors = {"user": self.data.user[rows], "item": self.data.item[rows]}
        if self.eval_protocol == "sampled100":
            gen = torch.Generator().manual_seed(self.seed + (1 if stage == "val" else 2))
            tensors["candidates"] = sample_negatives(self.seen("all"), tensors["user"], 100, gen)
            return InteractionBatches(tensors)
        exclude = self.seen("train" if stage == "val" else "train+val")
        return InteractionBatches(tensors, lookups={"exclude": (exclude, "user")})

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.task == "rating":
            self.datasets = {s: InteractionBatches(self._pairs(self.splits_index[s])) for s in ("train", "val", "test")}
        else:
            seen = self.seen("train")
            if bool((seen.counts() >= self.num_items).any()):
                raise DataError(
                    "a user has interacted with every item: no negatives to sample",
                    "use a split that holds out some items per user",
                )
            rows = self.splits_index["train"]
            train = {"user": self.data.user[rows], "item": self.data.item[rows]}
            self.datasets = {
                "train": InteractionBatches(train, negatives=self.num_negatives, seen=seen, seed=self.seed),
                "val": self._ranking_eval("val"),
                "test": self._ranking_eval("test"),
            }
        self.datasets["predict"] = self._predict_set()

    def _predict_set(self) -> InteractionBatches:
        if self.predict_topk:
            users = torch.arange(self.num_users)
            k = torch.tensor(min(self.predict_topk, self.num_items))
            return InteractionBatches(
                {"user": users, "row": users},
                lookups={"exclude": (self.seen("all"), "user")},
                constants={"k": k},
            )
        if self.predict_pairs:
            user, item = read_pairs(
                existing_path(self.predict_pairs, "data.predict_pairs", "file", "a user,item table"),
                self.data.user_ids,
                self.data.item_ids,
            )
            tensors = {"user": user, "item": item}
        else:  # the test split, with the true rating beside each score
            tensors = self._pairs(self.splits_index["test"])
        rows = torch.arange(len(tensors["user"]))  # each pair's line, so rows from several processes merge in order
        return InteractionBatches({**tensors, "row": rows})

    def prediction_names(self) -> dict[str, Sequence[Any]]:
        """The data's own ids for the ``user`` and ``item`` index columns of predictions."""
        return {"user": self.data.user_ids, "item": self.data.item_ids}

    def loader(self, split: Split):
        return batch_loader(
            self.datasets[split],
            self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=split == "train",
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            split=split,
        )
