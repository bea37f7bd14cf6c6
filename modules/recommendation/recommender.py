"""Recommendation scoring: rating prediction (MSE; RMSE and MAE) or top-K ranking (BPR or BCE with sampled
negatives; HR@K and NDCG@K), over a network from ``recipes.modules.recommendation.nets``. Every evaluation also reports
the metrics on cold items (few training interactions) under ``..._cold`` keys, so ID-only nets and
content-based ones (the text tower) are compared the same way."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError

from recipes.modules.compile import CompiledNet, check_compile
from recipes.modules.config import as_config, save_config_hparams
from recipes.modules.errors import ConfigError
from recipes.modules.init import InitConfig, apply_init
from recipes.modules.optim import OptimizerConfig, OptimizerSettings, SchedulerConfig, configure_optimization
from recipes.modules.optim.backward import FactoryBackward
from recipes.modules.optim.callbacks import optimization_callbacks
from recipes.modules.optim.groups import embedding_param_names
from recipes.modules.pretrained import FinetuneConfig, enable_gradient_checkpointing
from recipes.modules.recommendation.inputs import InteractionData
from recipes.modules.recommendation.metrics import hit_rate, ndcg, target_rank
from recipes.modules.recommendation.nets import build_rec_net, get_rec_net

__all__ = ["Recommender"]


class Recommender(CompiledNet, FactoryBackward, L.LightningModule):
    """Scores (user, item) pairs: predicts ratings or ranks items per user.

    Args:
        net: mf, neumf, dlrm, autorec or popularity (``recipes.modules.recommendation.nets``).
        objective: rating or ranking; the CLI takes it from the datamodule's ``task``.
        num_users: number of users; the CLI takes it from the datamodule.
        num_items: number of items; the CLI takes it from the datamodule.
        feature_sizes: categorical side-feature vocabularies (dlrm); the CLI takes them from the datamodule.
        rating_mean: the training ratings' mean, added to the net's output for rating prediction so every
            net learns a residual; the CLI takes it from the datamodule.
        rating_range: the lowest and highest training rating (the data's own scale); the CLI takes it from the
            datamodule.
        net_kwargs: extra arguments of the network, e.g. ``{dim: 128}`` for mf.
        embedding_l2: weight of the per-example L2 penalty on the user and item embedding rows a batch
            uses (classic MF regularization; ``model.optimizer.embedding_weight_decay`` is the alternative
            that shrinks every row every step).
        loss: ranking loss: bpr (pairwise, positive above each negative) or bce (pointwise, NCF's log loss).
        top_k: the K of HR@K and NDCG@K.
        clamp_ratings: clip predicted ratings to ``rating_range`` for evaluation and prediction.
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

    def __init__(
        self,
        net: str = "mf",
        objective: Literal["rating", "ranking"] = "rating",
        num_users: int | None = None,
        num_items: int | None = None,
        feature_sizes: dict[str, int] | None = None,
        rating_mean: float = 0.0,
        rating_range: list[float] | None = None,
        net_kwargs: dict[str, Any] | None = None,
        embedding_l2: float = 0.0,
        loss: Literal["bpr", "bce"] = "bpr",
        top_k: int = 10,
        clamp_ratings: bool = True,
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
        check_compile(compile)
        if num_users is None or num_items is None:
            raise ConfigError(
                "the model needs num_users and num_items",
                "use recipes.data.recommendation.datamodule.InteractionsDataModule, which provides them",
            )
        if rating_range is not None and (len(rating_range) != 2 or rating_range[0] > rating_range[1]):
            raise ConfigError(f"rating_range must be [lowest, highest], got {rating_range}", "fix model.rating_range")
        if cold_threshold < 0:
            raise ConfigError(f"cold_threshold must be >= 0, got {cold_threshold}", "e.g. --model.cold_threshold 5")
        if sparse_embeddings and embedding_optimizer is None:
            raise ConfigError(
                "sparse_embeddings needs an optimizer for sparse gradients",
                "set model.embedding_optimizer.name: sparse_adam (or adagrad)",
            )
        self.optimizer_config = as_config(OptimizerConfig, optimizer)
        self.scheduler_config = as_config(SchedulerConfig, scheduler)
        self.init_config = as_config(InitConfig, init)
        self.embedding_optimizer_config = (
            None if embedding_optimizer is None else as_config(OptimizerSettings, embedding_optimizer)
        )
        self.finetune_config = as_config(FinetuneConfig, finetune)
        save_config_hparams(
            self,
            optimizer=self.optimizer_config,
            scheduler=self.scheduler_config,
            init=self.init_config,
            finetune=self.finetune_config,
            embedding_optimizer=self.embedding_optimizer_config,
        )
        extra = {"sparse": True} if sparse_embeddings else {}
        if self.finetune_config.trust_remote_code:
            extra["trust_remote_code"] = True
        self.net = build_rec_net(net, num_users, num_items, feature_sizes, **extra, **(net_kwargs or {}))
        apply_init(self.net, self.init_config)
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
        if objective == "rating":
            self.train_rmse, self.val_rmse, self.test_rmse = (MeanSquaredError(squared=False) for _ in range(3))
            self.val_mae, self.test_mae = MeanAbsoluteError(), MeanAbsoluteError()
            self.val_rmse_cold, self.test_rmse_cold = MeanSquaredError(squared=False), MeanSquaredError(squared=False)
            # The loss as a metric: Lightning's sync_dist mean truncates the summed batch sizes to an integer under DDP.
            self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        else:
            self.val_hr, self.test_hr, self.val_ndcg, self.test_ndcg = (MeanMetric() for _ in range(4))
            self.val_hr_cold, self.test_hr_cold, self.val_ndcg_cold, self.test_ndcg_cold = (
                MeanMetric() for _ in range(4)
            )

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

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Predicted ratings (objective rating, unclamped) or ranking scores (logits) of the pairs."""
        out = self.net(user, item)
        return out + self.hparams.rating_mean if self.hparams.objective == "rating" else out

    def _clamp(self, pred: Tensor) -> Tensor:
        low_high = self.hparams.rating_range
        return pred.clamp(*low_high) if self.hparams.clamp_ratings and low_high is not None else pred

    def _ratings(self, user: Tensor, item: Tensor) -> Tensor:
        return self._clamp(self(user, item))

    def model_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Training loss, predictions and targets; for ranking the targets are 1 (positive) and 0 (negatives)."""
        user, item = batch["user"], batch["item"]
        l2 = self.hparams.embedding_l2
        if self.hparams.objective == "rating":
            pred = self(user, item)
            loss = F.mse_loss(pred, batch["rating"])
            if l2:
                loss = loss + l2 * self.net.embedding_penalty(user, item)
            return loss, pred.detach(), batch["rating"]
        pos = self(user, item).unsqueeze(1)
        neg = self(user.unsqueeze(1), batch["negatives"])
        if self.hparams.loss == "bpr":
            loss = -F.logsigmoid(pos - neg).mean()
        else:
            logits = torch.cat([pos, neg], dim=1)
            targets = torch.zeros_like(logits)
            targets[:, 0] = 1.0
            loss = F.binary_cross_entropy_with_logits(logits, targets)
        if l2:
            items = torch.cat([item.unsqueeze(1), batch["negatives"]], dim=1).flatten()
            loss = loss + l2 * self.net.embedding_penalty(user, items)
        return loss, pos.detach(), torch.ones_like(pos)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, pred, target = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True)
        if self.hparams.objective == "rating":
            self.train_rmse(self._clamp(pred), target)
            self.log("train/rmse", self.train_rmse, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        user, item = batch["user"], batch["item"]
        if self.hparams.objective == "rating":
            pred = self._ratings(user, item)
            mean_loss = getattr(self, f"{stage}_loss")
            mean_loss.update(F.mse_loss(pred, batch["rating"]).detach(), weight=len(pred))
            self.log(f"{stage}/loss", mean_loss)
            rmse, mae = getattr(self, f"{stage}_rmse"), getattr(self, f"{stage}_mae")
            rmse(pred, batch["rating"])
            mae(pred, batch["rating"])
            self.log(f"{stage}/rmse", rmse, prog_bar=stage == "val")
            self.log(f"{stage}/mae", mae)
            cold = self._cold(item)
            if cold is not None:
                rmse_cold = getattr(self, f"{stage}_rmse_cold")
                rmse_cold(pred[cold], batch["rating"][cold])
                self.log(f"{stage}/rmse_cold", rmse_cold)
            return
        k = self.hparams.top_k
        if "candidates" in batch:  # the sampled protocol: the held-out item (column 0) against 100 negatives
            scores = self(user.unsqueeze(1), torch.cat([item.unsqueeze(1), batch["candidates"]], dim=1))
            rank, suffix = target_rank(scores, torch.zeros_like(item)), f"_sampled{batch['candidates'].shape[1]}"
        else:  # full ranking over every item, minus those the datamodule excludes (training items)
            rank, suffix = target_rank(self.net.score_all(user), item, batch["exclude"]), ""
        hr, nd = getattr(self, f"{stage}_hr"), getattr(self, f"{stage}_ndcg")
        hr(hit_rate(rank, k))
        nd(ndcg(rank, k))
        self.log(f"{stage}/hr@{k}{suffix}", hr, prog_bar=stage == "val")
        self.log(f"{stage}/ndcg@{k}{suffix}", nd, prog_bar=stage == "val")
        cold = self._cold(item)
        if cold is not None:  # weighted means: rows of warm items weigh 0
            hr_cold, nd_cold = getattr(self, f"{stage}_hr_cold"), getattr(self, f"{stage}_ndcg_cold")
            hr_cold.update(hit_rate(rank, k), weight=cold.float())
            nd_cold.update(ndcg(rank, k), weight=cold.float())
            self.log(f"{stage}/hr@{k}{suffix}_cold", hr_cold)
            self.log(f"{stage}/ndcg@{k}{suffix}_cold", nd_cold)

    def _cold(self, item: Tensor) -> Tensor | None:
        """Which rows' items are cold; None when no datamodule gave the training counts."""
        if not self.counts_loaded:
            return None
        return self.item_train_counts[item] <= self.hparams.cold_threshold

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """Scores of the batch's pairs, or the top ``k`` unrated items of each user, as user and item indices (the
        prediction writer writes the data's own ids)."""
        rating = self.hparams.objective == "rating"
        if "k" in batch:
            k = int(batch["k"])
            scores = self.net.score_all(batch["user"])
            if rating:
                scores = self._clamp(scores + self.hparams.rating_mean)
            top = scores.masked_fill(batch["exclude"], float("-inf")).topk(k, dim=1)
            n = batch["user"].shape[0]
            return {
                "_row": batch["row"].repeat_interleave(k),
                "user": batch["user"].repeat_interleave(k),
                "rank": torch.arange(1, k + 1, device=self.device).repeat(n),
                "item": top.indices.flatten(),
                "score": top.values.flatten(),
            }
        score = self._ratings(batch["user"], batch["item"]) if rating else self(batch["user"], batch["item"])
        out = {"_row": batch["row"], "user": batch["user"], "item": batch["item"], "score": score}
        if "rating" in batch:
            out["rating"] = batch["rating"]
        return out

    def configure_optimizers(self) -> Any:
        if not get_rec_net(self.hparams.net).trainable:
            raise ConfigError(
                f"net {self.hparams.net!r} has nothing to train",
                "evaluate it with: python -m recipes test --config ... (no fit needed)",
            )
        return configure_optimization(self, self._optimizer_with_embeddings(), self.scheduler_config)

    def _optimizer_with_embeddings(self) -> OptimizerConfig:
        """``optimizer``, with the embedding tables routed to ``embedding_optimizer`` when one is set."""
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

    def configure_callbacks(self) -> list[L.Callback]:
        return [*optimization_callbacks(), *self.finetune_config.freeze_callbacks(self.backbones)]

    def export_pretrained(self, out_dir: str) -> None:
        """Write the net's fine-tuned pretrained backbone (and tokenizer) with ``save_pretrained``."""
        if not callable(getattr(self.net, "export_pretrained", None)):
            raise ConfigError(
                f"net {self.hparams.net!r} has no pretrained backbone to export",
                "export a model fine-tuned with net text_tower",
            )
        self.net.export_pretrained(out_dir)
