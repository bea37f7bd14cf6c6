"""The recommendation task modules' shared base: a network from ``recipes.modules.recommendation.nets`` over
(user, item) pairs, the data it reads, the data's own ids in checkpoints, cold-item metrics, an optional second
optimizer for the embedding tables and a pretrained backbone's fine-tuning.

Its two tasks are its subclasses, each with its own batch schema, loss and metrics:
``RatingRecommender`` (``rating.py``: predicts ratings, MSE; RMSE and MAE) and ``RankingRecommender``
(``ranking.py``: ranks items per user, BPR or BCE over sampled negatives; HR@K and NDCG@K by full ranking).
Every evaluation also reports the metrics on cold items (few training interactions) under ``..._cold`` keys, so
ID-only nets and content-based ones (the text tower) are compared the same way."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import Tensor

from recipes.modules.config import as_config
from recipes.modules.errors import ConfigError
from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, OptimizerSettings, SchedulerConfig
from recipes.modules.optim.groups import embedding_param_names
from recipes.modules.pretrained import FinetuneConfig, enable_gradient_checkpointing
from recipes.modules.recommendation.inputs import InteractionData
from recipes.modules.recommendation.nets import build_rec_net, get_rec_net
from recipes.modules.task import TaskModule

__all__ = ["Recommender", "RECOMMENDERS"]

# Each data.task -> the task module that trains on it.
RECOMMENDERS = {
    "rating": "recipes.modules.recommendation.rating.RatingRecommender",
    "ranking": "recipes.modules.recommendation.ranking.RankingRecommender",
}


class Recommender(TaskModule):
    """Scores (user, item) pairs; the base of ``RatingRecommender`` and ``RankingRecommender``.

    Args:
        net: mf, neumf, dlrm, autorec, text_tower or popularity (``recipes.modules.recommendation.nets``).
        num_users: number of users; the CLI takes it from the datamodule.
        num_items: number of items; the CLI takes it from the datamodule.
        feature_sizes: categorical side-feature vocabularies (dlrm); the CLI takes them from the datamodule.
        net_kwargs: extra arguments of the network, e.g. ``{dim: 128}`` for mf.
        embedding_l2: weight of the per-example L2 penalty on the user and item embedding rows a batch
            uses (classic MF regularization; ``model.optimizer.embedding_weight_decay`` is the alternative
            that shrinks every row every step).
        sparse_embeddings: build embedding tables with sparse gradients; needs ``embedding_optimizer``.
        embedding_optimizer: a second optimizer for the embedding tables (e.g. sparse_adam or adagrad),
            built by the shared factory; the other parameters keep ``optimizer``. None: one optimizer for all.
        optimizer: the optimizer and its parameter groups (shared factory).
        scheduler: the learning-rate schedule (shared factory).
        compile: compile the network with ``torch.compile`` (``recipes.modules.compile``): true, or its arguments
            (``{mode: max-autotune, dynamic: true}``); checkpoints are the same either way.
        init: the initializer of the freshly built network (shared factory); default keeps each net's own.
        cold_threshold: items with at most this many training interactions are cold; validation and test
            also log every metric over the rows whose item is cold (``val/rmse_cold``, ``test/hr@10_cold``).
        finetune: how a net's pretrained backbone (e.g. text_tower's encoder) is fine-tuned: frozen for the
            first epochs or steps, gradient checkpointing.
    """

    task: ClassVar[str] = ""  # the datamodule's task this module trains on
    # Checkpoints of the one class there was before rating and ranking were split: the error's fix.
    supersedes: ClassVar[dict[str, str]] = {
        "recipes.modules.recommendation.recommender.Recommender": "it was written before rating and ranking became "
        "two classes (RatingRecommender, RankingRecommender): fit it again with configs/recommendation*.yaml"
    }

    def __init__(
        self,
        net: str = "mf",
        num_users: int | None = None,
        num_items: int | None = None,
        feature_sizes: dict[str, int] | None = None,
        net_kwargs: dict[str, Any] | None = None,
        embedding_l2: float = 0.0,
        sparse_embeddings: bool = False,
        embedding_optimizer: OptimizerSettings | None = None,
        optimizer: OptimizerConfig = OptimizerConfig(),
        scheduler: SchedulerConfig = SchedulerConfig(),
        compile: bool | dict[str, Any] = False,
        init: InitConfig = InitConfig(),
        cold_threshold: int = 5,
        finetune: FinetuneConfig = FinetuneConfig(),
    ) -> None:
        super().__init__()
        if not self.task:
            raise ConfigError(
                "Recommender is the base of the two recommendation tasks",
                f"set model.class_path to {RECOMMENDERS['rating']} or {RECOMMENDERS['ranking']}",
            )
        if num_users is None or num_items is None:
            raise ConfigError(
                "the model needs num_users and num_items",
                "use recipes.data.recommendation.datamodule.InteractionsDataModule, which provides them",
            )
        if cold_threshold < 0:
            raise ConfigError(f"cold_threshold must be >= 0, got {cold_threshold}", "e.g. --model.cold_threshold 5")
        if sparse_embeddings and embedding_optimizer is None:
            raise ConfigError(
                "sparse_embeddings needs an optimizer for sparse gradients",
                "set model.embedding_optimizer.name: sparse_adam (or adagrad)",
            )
        self.embedding_optimizer_config = (
            None if embedding_optimizer is None else as_config(OptimizerSettings, embedding_optimizer)
        )
        self.configure_training(
            optimizer, scheduler, compile, init, finetune, embedding_optimizer=self.embedding_optimizer_config
        )
        extra = {"sparse": True} if sparse_embeddings else {}
        if self.finetune_config.trust_remote_code:
            extra["trust_remote_code"] = True
        self.net = self.initialize(
            build_rec_net(net, num_users, num_items, feature_sizes, **extra, **(net_kwargs or {}))
        )
        self.backbones = self._pretrained_prefixes()
        f = self.finetune_config
        if (f.freeze_epochs or f.freeze_steps or f.gradient_checkpointing) and not self.backbones:
            raise ConfigError(
                f"model.finetune is set but net {net!r} has no pretrained backbone",
                "drop model.finetune, or use net text_tower",
            )
        if f.gradient_checkpointing:
            for name in self.backbones:
                enable_gradient_checkpointing(self.get_submodule(name))
        # Training interactions per item (from the datamodule in setup) tell cold items apart; not saved,
        # so checkpoints from before this buffer existed still load.
        self.register_buffer("item_train_counts", torch.zeros(num_items, dtype=torch.long), persistent=False)
        self.counts_loaded = False
        self.data_ids: dict[str, list[Any]] | None = None  # the data's own ids (setup), kept in checkpoints
        self.make_metrics()

    def _pretrained_prefixes(self) -> list[str]:
        """Names of the outermost submodules holding loaded weights (``mark_pretrained``): the backbones."""
        out: list[str] = []
        for name, module in self.named_modules():
            if getattr(module, "is_pretrained", False) and not any(name.startswith(p + ".") for p in out):
                out.append(name)
        return out

    def setup(self, stage: str) -> None:
        # Side features, popularity counts and the training rating matrix live in the datamodule; a
        # checkpoint, restored after this hook, brings back the same values.
        data = getattr(self.trainer, "datamodule", None)
        if data is None:
            return
        if not isinstance(data, InteractionData):
            raise ConfigError(
                f"{type(data).__name__} does not provide what a Recommender reads (InteractionData)",
                "use recipes.data.recommendation.datamodule.InteractionsDataModule",
            )
        if data.task != self.task:
            raise ConfigError(
                f"data.task is {data.task}, and {type(self).__name__} trains on {self.task}",
                f"use data.task {self.task}, or model.class_path {RECOMMENDERS[data.task]}",
            )
        reads = get_rec_net(self.hparams.net).cls.reads
        if "side_features" in reads:
            self.net.load_side_features({k: v.to(self.device) for k, v in data.side_features().items()})
        if "interactions" in reads:
            self.net.load_interactions(**{k: v.to(self.device) for k, v in data.train_interactions().items()})
        if "item_texts" in reads:
            self.net.load_item_texts(data.item_texts())
        self.item_train_counts.copy_(data.item_train_counts())
        self.counts_loaded = True
        self.data_ids = {"user": list(data.user_ids.as_list()), "item": list(data.item_ids.as_list())}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The data's own user and item ids, by index: a checkpoint names what its embeddings stand for."""
        if self.data_ids is not None:
            checkpoint["recipes_ids"] = self.data_ids

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("recipes_ids")
        if saved is None or self.data_ids is None:
            return
        for kind in ("user", "item"):
            there, here = saved[kind], self.data_ids[kind]
            if there == here:
                continue
            if len(there) != len(here):
                where = f"{len(there):,} there, {len(here):,} here"
            else:
                i = next(i for i, (a, b) in enumerate(zip(there, here)) if a != b)
                where = f"index {i} is {there[i]!r} there, {here[i]!r} here"
            raise ConfigError(
                f"the checkpoint was trained on other {kind}s than this data holds ({where})",
                "evaluate and predict with the data the model was trained on (the same interactions)",
            )

    def make_metrics(self) -> None:
        """The task's torchmetrics objects (one per stage and metric, so DDP sums every rank's batches)."""
        raise NotImplementedError

    def evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        """Update and log ``stage``'s metrics on ``batch``."""
        raise NotImplementedError

    def _cold(self, item: Tensor) -> Tensor | None:
        """Which rows' items are cold; None when no datamodule gave the training counts."""
        if not self.counts_loaded:
            return None
        return self.item_train_counts[item] <= self.hparams.cold_threshold

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def top_items(self, batch: dict[str, Tensor], scores: Tensor) -> dict[str, Tensor]:
        """``predict --data.predict_topk K``: each user's ``K`` best-scored items it has not interacted with, as
        user and item indices (the prediction writer writes the data's own ids)."""
        k = int(batch["k"])
        top = scores.masked_fill(batch["exclude"], float("-inf")).topk(k, dim=1)
        n = batch["user"].shape[0]
        return {
            "_row": batch["row"].repeat_interleave(k),
            "user": batch["user"].repeat_interleave(k),
            "rank": torch.arange(1, k + 1, device=self.device).repeat(n),
            "item": top.indices.flatten(),
            "score": top.values.flatten(),
        }

    def fit_optimizer_config(self) -> OptimizerConfig:
        """``optimizer``, with the embedding tables routed to ``embedding_optimizer`` when one is set."""
        if not get_rec_net(self.hparams.net).trainable:
            raise ConfigError(
                f"net {self.hparams.net!r} has nothing to train",
                "evaluate it with: python -m recipes test --config ... (no fit needed)",
            )
        cfg, emb = self.optimizer_config, self.embedding_optimizer_config
        if emb is None:
            return cfg
        if cfg.fallback is not None or cfg.route:
            raise ConfigError(
                "model.embedding_optimizer and model.optimizer.fallback/route both route parameters",
                "use one of them (embedding_optimizer is a fallback that takes the embedding tables)",
            )
        tables = embedding_param_names(self)
        if not tables:
            raise ConfigError(
                f"{type(self.net).__name__} has no embedding tables for model.embedding_optimizer",
                "set model.embedding_optimizer: null",
            )
        return replace(cfg, fallback=emb, route={"": "main", **{name: "fallback" for name in tables}})

    def backbone_prefixes(self) -> list[str]:
        return self.backbones

    def export_pretrained(self, out_dir: str) -> None:
        """Write the net's fine-tuned pretrained backbone (and tokenizer) with ``save_pretrained``."""
        if not callable(getattr(self.net, "export_pretrained", None)):
            raise ConfigError(
                f"net {self.hparams.net!r} has no pretrained backbone to export",
                "export a model fine-tuned with net text_tower",
            )
        self.net.export_pretrained(out_dir)
