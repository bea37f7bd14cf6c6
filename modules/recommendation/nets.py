"""The recommendation networks, by name: each scores (user, item) index pairs (``PairScorer``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recipes.modules.errors import ConfigError
from recipes.modules.recommendation.autorec import AutoRec
from recipes.modules.recommendation.dlrm import DLRM
from recipes.modules.recommendation.mf import MatrixFactorization
from recipes.modules.recommendation.neumf import NeuMF
from recipes.modules.recommendation.scoring import PairScorer, Popularity
from recipes.modules.recommendation.text_tower import TextTower
from recipes.modules.registry import Registry, construct

__all__ = ["RecNetInfo", "REC_NETS", "build_rec_net"]


@dataclass(frozen=True)
class RecNetInfo:
    """One registered recommendation network.

    ``uses_features``: the constructor takes ``feature_sizes`` (side features); ``trainable``: it has
    parameters to fit (the popularity baseline has none and is evaluated with ``test`` alone).
    """

    name: str
    cls: type[PairScorer]
    description: str
    uses_features: bool = False
    trainable: bool = True


REC_NETS: Registry[RecNetInfo] = Registry(
    "recommendation network",
    (
        (i.name, i)
        for i in [
            RecNetInfo(
                "mf", MatrixFactorization, "biased matrix factorization: global + user + item bias + dot product"
            ),
            RecNetInfo("neumf", NeuMF, "NeuMF (He et al., 2017): GMF and MLP towers joined by a linear layer"),
            RecNetInfo(
                "autorec",
                AutoRec,
                "I-AutoRec (Sedhain et al., 2015): each item's training ratings through a sigmoid autoencoder",
            ),
            RecNetInfo(
                "dlrm",
                DLRM,
                "DLRM-style: side features, bottom MLP, pairwise dot interactions, top MLP",
                uses_features=True,
            ),
            RecNetInfo(
                "text_tower",
                TextTower,
                "user embeddings against a fine-tuned pretrained text encoder (MiniLM) over item titles, years, "
                "genres; "
                "hybrid with ID embeddings",
            ),
            RecNetInfo(
                "popularity", Popularity, "baseline: items scored by their training-set popularity", trainable=False
            ),
        ]
    ),
    setting="model.net",
)


def get_rec_net(name: str) -> RecNetInfo:
    """Look a network up by name; an unknown name fails with the closest ones."""
    return REC_NETS.lookup(name)


def build_rec_net(
    name: str, num_users: int, num_items: int, feature_sizes: dict[str, int] | None = None, **kwargs: Any
) -> PairScorer:
    """Build a registered network for ``num_users`` x ``num_items``; ``kwargs`` are its own arguments."""
    info = get_rec_net(name)
    if info.uses_features:
        if not feature_sizes:
            raise ConfigError(
                f"network {name!r} needs the datamodule's feature_sizes",
                "use recipes.data.recommendation.datamodule.InteractionsDataModule",
            )
        kwargs["feature_sizes"] = feature_sizes
    return construct(name, info.cls, num_users=num_users, num_items=num_items, **kwargs)
