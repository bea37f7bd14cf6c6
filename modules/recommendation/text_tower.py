"""A two-tower scorer whose item tower is a pretrained sentence encoder over each item's text.

The item text (a movie's title, year and genres, from the datamodule's ``item_texts``) is tokenized once
into buffers, so checkpoints carry it. The encoder (all-MiniLM-L6-v2 by default, loaded offline through
``recipes.modules.pretrained``) mean-pools its last hidden states; a linear projection turns that into the item
vector, optionally summed with an ID embedding (``hybrid``). A rating or ranking score is
``b + b_u + b_i + <p_u, q_i>`` as in biased MF, with the item bias (and b) read from the text.

Cost is the encoder's: a training batch encodes only its unique items, and evaluation encodes the whole
catalogue once per epoch (the pooled features are cached until the encoder's weights change). On a CPU,
``grad_items`` caps how many of a batch's items backpropagate through the encoder; the others read a
memory bank of pooled features refreshed by every full encoding and by every fresh one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recipes.modules.pretrained import load_pretrained, resolve_pretrained
from recipes.modules.recommendation.scoring import PairScorer

__all__ = ["TextTower"]


class TextTower(PairScorer):
    """User embeddings against a fine-tuned pretrained text encoder's item vectors.

    Args:
        num_users: number of users.
        num_items: number of items.
        pretrained: hub id or local directory of a transformers encoder (``AutoModel``) and its tokenizer.
        dim: size of the user and item vectors.
        hybrid: also give every item an ID embedding and bias, summed with the text's (warm items then
            keep what their own ratings say; cold items lean on their text).
        max_length: tokens kept per item text (longer texts are truncated).
        grad_items: at most this many of a training batch's unique items backpropagate through the
            encoder (None: all); the rest read the memory bank.
        encode_batch_size: texts per encoder call when the whole catalogue is encoded.
        dropout: keep the encoder's own dropout while fine-tuning. Off by default: the memory bank's
            features carry none, and a batch mixing both would train the head on two distributions.
        init_std: std of the normal init of the user and item ID embeddings.
        trust_remote_code: let a hub model run its own code (off: only transformers' classes).
        sparse: unsupported (the encoder needs dense gradients); present so the registry builds every net alike.
    """

    reads = ("item_texts",)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
        dim: int = 64,
        hybrid: bool = True,
        max_length: int = 32,
        grad_items: int | None = None,
        encode_batch_size: int = 256,
        dropout: bool = False,
        init_std: float = 0.01,
        trust_remote_code: bool = False,
        sparse: bool = False,
    ) -> None:
        from transformers import (
            AutoModel,
            AutoTokenizer,
        )  # here: importing transformers costs seconds every other net saves

        super().__init__()
        if sparse:
            raise ValueError("text_tower has no sparse embeddings (its encoder needs a dense optimizer)")
        if max_length < 2 or dim < 1 or (grad_items is not None and grad_items < 1):
            raise ValueError("max_length must be >= 2, dim >= 1 and grad_items >= 1 or null")
        self.num_items, self.max_length, self.grad_items, self.encode_batch_size = (
            num_items,
            max_length,
            grad_items,
            encode_batch_size,
        )
        self.dropout = dropout
        # Registered first: layer-wise lr decay treats parameters before the encoder's stack as its stem.
        self.text = load_pretrained(AutoModel, pretrained, trust_remote_code=trust_remote_code)
        if getattr(self.text, "pooler", None) is not None:
            self.text.pooler = None  # mean pooling is used instead; an unused pooler would get no gradient
        self.tokenizer = AutoTokenizer.from_pretrained(
            resolve_pretrained(pretrained), trust_remote_code=trust_remote_code
        )
        width = self.text.config.hidden_size
        self.item_proj = nn.Linear(width, dim)
        self.item_text_bias = nn.Linear(
            width, 1
        )  # its bias is the global offset b (kept after the encoder for layer decay)
        self.user = nn.Embedding(num_users, dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.user_tables: tuple[str, ...] = ("user",)
        self.item_tables: tuple[str, ...] = ()
        if hybrid:
            self.item = nn.Embedding(num_items, dim)
            self.item_bias = nn.Embedding(num_items, 1)
            self.item_tables = ("item",)
            nn.init.normal_(self.item.weight, std=init_std)
            nn.init.zeros_(self.item_bias.weight)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        self.register_buffer("input_ids", torch.zeros(num_items, max_length, dtype=torch.long))
        self.register_buffer("attention_mask", torch.zeros(num_items, max_length, dtype=torch.long))
        self._cache: tuple[int, Tensor] | None = None  # (encoder weights' version, pooled features of every item)
        self._bank: Tensor | None = None
        self.train()  # from_pretrained returns the encoder in eval mode; the rule in train() decides

    def train(self, mode: bool = True) -> "TextTower":
        super().train(mode)
        if not self.dropout:
            self.text.train(False)  # dropout off; gradients still flow
        return self

    def no_weight_decay(self) -> set[str]:
        return {"user_bias.weight", "item_bias.weight"}  # biases stored as (N, 1) tables

    def load_item_texts(self, texts: list[str]) -> None:
        """Tokenize every item's text once (index order) into the ``input_ids``/``attention_mask`` buffers."""
        if len(texts) != self.num_items:
            raise ValueError(f"expected {self.num_items} item texts, got {len(texts)}")
        enc = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        self.input_ids.copy_(enc["input_ids"])
        self.attention_mask.copy_(enc["attention_mask"])
        self._cache = self._bank = None

    def export_pretrained(self, out_dir: str) -> None:
        """Write the (fine-tuned) encoder and its tokenizer with ``save_pretrained``."""
        self.text.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)

    # --- the item tower -----------------------------------------------------------------------------
    def _encode(self, items: Tensor) -> Tensor:
        """Mean-pooled last hidden states of ``items``' texts, padded only to the longest of them."""
        mask = self.attention_mask[items]
        width = int(mask.sum(1).max())
        mask = mask[:, :width]
        hidden = self.text(input_ids=self.input_ids[items, :width], attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def _encoder_version(self) -> int:
        return sum(p._version for p in self.text.parameters())  # in-place updates (optimizer steps, loads) bump it

    @torch.no_grad()
    def pooled_all(self) -> Tensor:
        """Pooled features of every item, without dropout, recomputed only after the encoder changed."""
        version = self._encoder_version()
        if self._cache is None or self._cache[0] != version or self._cache[1].device != self.input_ids.device:
            was_training = self.text.training
            self.text.eval()
            items = torch.arange(self.num_items, device=self.input_ids.device)
            pooled = torch.cat([self._encode(chunk) for chunk in items.split(self.encode_batch_size)])
            self.text.train(was_training)
            self._cache, self._bank = (version, pooled), pooled.clone()
        return self._cache[1]

    def _pooled(self, items: Tensor) -> Tensor:
        trainable = self.training and torch.is_grad_enabled() and any(p.requires_grad for p in self.text.parameters())
        if not trainable:  # evaluation, or a frozen encoder: the cached features are exact
            return self.pooled_all()[items]
        if self.grad_items is None or items.shape[0] <= self.grad_items:
            return self._encode(items)
        if self._bank is None or self._bank.device != self.input_ids.device:
            self.pooled_all()
        pick = torch.randperm(items.shape[0], device=items.device)[: self.grad_items]
        fresh = self._encode(items[pick])
        self._bank[items[pick]] = fresh.detach()
        return self._bank[items].index_copy(0, pick, fresh)

    def item_vectors(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """(len(items), dim) item vectors and (len(items),) item biases."""
        pooled = self._pooled(items)
        vec, bias = self.item_proj(pooled), self.item_text_bias(pooled).squeeze(-1)
        if hasattr(self, "item"):
            vec, bias = vec + self.item(items), bias + self.item_bias(items).squeeze(-1)
        return vec, bias

    def embedding_penalty(self, user: Tensor, item: Tensor) -> Tensor:
        """MF's per-example L2 on the user vectors and the whole item vectors (ID part plus projected text).

        The text part reads the memory bank, so the penalty shrinks the projection without a second pass
        through the encoder (which the score's gradient already trains).
        """
        if self._bank is None or self._bank.device != self.input_ids.device:
            self.pooled_all()
        vec = self.item_proj(self._bank[item]) + (self.item(item) if hasattr(self, "item") else 0.0)
        return (self.user(user).pow(2).sum() + vec.pow(2).sum()) / user.shape[0]

    def score_pairs(self, user: Tensor, item: Tensor) -> Tensor:
        items, where = item.unique(return_inverse=True)  # each distinct item is encoded once per batch
        vec, bias = self.item_vectors(items)
        return self.user_bias(user).squeeze(-1) + bias[where] + (self.user(user) * vec[where]).sum(-1)

    def score_all(self, user: Tensor) -> Tensor:
        vec, bias = self.item_vectors(torch.arange(self.num_items, device=user.device))
        return self.user_bias(user) + bias + self.user(user) @ vec.T
