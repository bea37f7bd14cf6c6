"""Rating prediction: the net's score plus the training mean is the predicted rating, trained with MSE (plus an
optional per-example L2 on the embedding rows a batch uses) and evaluated by RMSE and MAE, overall and on cold
items. Batches: ``user``, ``item``, ``rating`` (and ``row`` for prediction)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError

from recipes.modules.errors import ConfigError
from recipes.modules.recommendation.recommender import Recommender

__all__ = ["RatingRecommender"]


class RatingRecommender(Recommender):
    """Predicts the rating of (user, item) pairs on the data's own scale.

    Args:
        rating_mean: the training ratings' mean, added to the net's output so every net learns a residual; the
            CLI takes it from the datamodule.
        rating_range: the lowest and highest training rating (the data's own scale); the CLI takes it from the
            datamodule.
        clamp_ratings: clip predicted ratings to ``rating_range`` for evaluation and prediction.
        **kwargs: the network, optimizer and the other settings of ``Recommender``.
    """

    task = "rating"

    def __init__(
        self,
        rating_mean: float = 0.0,
        rating_range: list[float] | None = None,
        clamp_ratings: bool = True,
        **kwargs: Any,
    ) -> None:
        if rating_range is not None and (len(rating_range) != 2 or rating_range[0] > rating_range[1]):
            raise ConfigError(f"rating_range must be [lowest, highest], got {rating_range}", "fix model.rating_range")
        super().__init__(**kwargs)

    def make_metrics(self) -> None:
        self.train_rmse, self.val_rmse, self.test_rmse = (MeanSquaredError(squared=False) for _ in range(3))
        self.val_mae, self.test_mae = MeanAbsoluteError(), MeanAbsoluteError()
        self.val_rmse_cold, self.test_rmse_cold = MeanSquaredError(squared=False), MeanSquaredError(squared=False)
        # The loss as a metric: Lightning's sync_dist mean truncates the summed batch sizes to an integer under DDP.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Predicted ratings of the pairs, unclamped."""
        return self.net(user, item) + self.hparams.rating_mean

    def _clamp(self, pred: Tensor) -> Tensor:
        low_high = self.hparams.rating_range
        return pred.clamp(*low_high) if self.hparams.clamp_ratings and low_high is not None else pred

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        user, item, rating = batch["user"], batch["item"], batch["rating"]
        pred = self(user, item)
        loss = F.mse_loss(pred, rating)
        if self.hparams.embedding_l2:
            loss = loss + self.hparams.embedding_l2 * self.net.embedding_penalty(user, item)
        self.log("train/loss", loss, prog_bar=True)
        self.train_rmse(self._clamp(pred.detach()), rating)
        self.log("train/rmse", self.train_rmse, on_step=False, on_epoch=True)
        return loss

    def evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        item, rating = batch["item"], batch["rating"]
        pred = self._clamp(self(batch["user"], item))
        mean_loss = getattr(self, f"{stage}_loss")
        mean_loss.update(F.mse_loss(pred, rating).detach(), weight=len(pred))
        self.log(f"{stage}/loss", mean_loss)
        rmse, mae = getattr(self, f"{stage}_rmse"), getattr(self, f"{stage}_mae")
        rmse(pred, rating)
        mae(pred, rating)
        self.log(f"{stage}/rmse", rmse, prog_bar=stage == "val")
        self.log(f"{stage}/mae", mae)
        cold = self._cold(item)
        if cold is not None:
            rmse_cold = getattr(self, f"{stage}_rmse_cold")
            rmse_cold(pred[cold], rating[cold])
            self.log(f"{stage}/rmse_cold", rmse_cold)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """Predicted ratings of the batch's pairs (with the true rating when the pairs are the test split's),
        or each user's top ``k`` items."""
        if "k" in batch:
            return self.top_items(batch, self._clamp(self.net.score_all(batch["user"]) + self.hparams.rating_mean))
        score = self._clamp(self(batch["user"], batch["item"]))
        out = {"_row": batch["row"], "user": batch["user"], "item": batch["item"], "score": score}
        if "rating" in batch:
            out["rating"] = batch["rating"]
        return out
