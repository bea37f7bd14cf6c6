"""Top-K ranking: the net's score ranks items per user, trained with BPR (pairwise: the positive above each
sampled negative) or BCE (pointwise, NCF's log loss) over sampled negatives, and evaluated by HR@K and NDCG@K over
every item the user has not interacted with in training (full ranking, in chunks of users), or against sampled
candidates. Batches: ``user``, ``item``, ``negatives`` for training; ``exclude`` or ``candidates`` for
evaluation."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric

from recipes.modules.errors import ConfigError
from recipes.modules.recommendation.metrics import hit_rate, ndcg, target_rank
from recipes.modules.recommendation.recommender import Recommender

__all__ = ["RankingRecommender"]


class RankingRecommender(Recommender):
    """Ranks items for each user (implicit feedback: every interaction is a positive).

    Args:
        loss: bpr (pairwise, positive above each negative) or bce (pointwise, NCF's log loss).
        top_k: the K of HR@K and NDCG@K.
        **kwargs: the network, optimizer and the other settings of ``Recommender``.
    """

    task = "ranking"

    def __init__(self, loss: Literal["bpr", "bce"] = "bpr", top_k: int = 10, **kwargs: Any) -> None:
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}", "e.g. --model.top_k 10")
        super().__init__(**kwargs)

    def make_metrics(self) -> None:
        self.val_hr, self.test_hr, self.val_ndcg, self.test_ndcg = (MeanMetric() for _ in range(4))
        self.val_hr_cold, self.test_hr_cold, self.val_ndcg_cold, self.test_ndcg_cold = (MeanMetric() for _ in range(4))

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Ranking scores (logits) of the pairs."""
        return self.net(user, item)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        user, item, negatives = batch["user"], batch["item"], batch["negatives"]
        pos = self(user, item).unsqueeze(1)
        neg = self(user.unsqueeze(1), negatives)
        if self.hparams.loss == "bpr":
            loss = -F.logsigmoid(pos - neg).mean()
        else:
            logits = torch.cat([pos, neg], dim=1)
            targets = torch.zeros_like(logits)
            targets[:, 0] = 1.0
            loss = F.binary_cross_entropy_with_logits(logits, targets)
        if self.hparams.embedding_l2:
            items = torch.cat([item.unsqueeze(1), negatives], dim=1).flatten()
            loss = loss + self.hparams.embedding_l2 * self.net.embedding_penalty(user, items)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        user, item, k = batch["user"], batch["item"], self.hparams.top_k
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

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """Scores of the batch's pairs, or each user's top ``k`` items."""
        if "k" in batch:
            return self.top_items(batch, self.net.score_all(batch["user"]))
        score = self(batch["user"], batch["item"])
        out = {"_row": batch["row"], "user": batch["user"], "item": batch["item"], "score": score}
        if "rating" in batch:
            out["rating"] = batch["rating"]
        return out
