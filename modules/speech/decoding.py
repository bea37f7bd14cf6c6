"""CTC decoding over per-frame log-probabilities: greedy (best path) and prefix beam search.

Both take ``log_probs`` of shape ``(T, V)`` for one utterance (or ``(B, T, V)`` plus lengths for a
batch) with the blank at index ``blank`` and return label sequences, blanks removed and CTC repeats
collapsed. The prefix beam search sums the probability of every alignment of a prefix, keeping
separately the mass of alignments that end in blank and in a non-blank (Hannun et al., 2014), so a
label repeated in the output ("ll" in "hello") needs a blank between its two frames.
"""

from __future__ import annotations

import math
from collections import defaultdict

from torch import Tensor

__all__ = ["greedy_decode", "prefix_beam_search", "decode_batch"]

_NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def greedy_decode(log_probs: Tensor, blank: int = 0) -> list[int]:
    """The best path: the most likely class per frame, repeats collapsed, blanks removed."""
    best = log_probs.argmax(dim=-1).tolist()
    out, prev = [], None
    for k in best:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def prefix_beam_search(
    log_probs: Tensor, beam_width: int = 8, blank: int = 0, prune_top_k: int | None = None
) -> list[tuple[list[int], float]]:
    """The ``beam_width`` most likely label sequences with their log-probabilities, best first.

    Args:
        log_probs: ``(T, V)`` log-probabilities of one utterance.
        beam_width: prefixes kept after every frame.
        blank: index of the CTC blank.
        prune_top_k: only extend prefixes with the k most likely labels of a frame (speed); None tries all.
    """
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    lp = log_probs.detach().float().cpu()
    # prefix -> (log P(alignments of prefix ending in blank), log P(... ending in a non-blank))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}
    for t in range(lp.shape[0]):
        frame = lp[t].tolist()
        labels = range(len(frame)) if prune_top_k is None else lp[t].topk(min(prune_top_k, len(frame))).indices.tolist()
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            entry = nxt[prefix]
            entry[0] = _logaddexp(entry[0], total + frame[blank])  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            for k in labels:
                if k == blank:
                    continue
                p = frame[k]
                if k == last:
                    # the same label again: without a blank in between it merges into the prefix ...
                    entry[1] = _logaddexp(entry[1], pnb + p)
                    # ... after a blank it starts a new, repeated label
                    ext = nxt[prefix + (k,)]
                    ext[1] = _logaddexp(ext[1], pb + p)
                else:
                    ext = nxt[prefix + (k,)]
                    ext[1] = _logaddexp(ext[1], total + p)
        alive = [kv for kv in nxt.items() if _logaddexp(*kv[1]) > _NEG_INF]  # e.g. a repeat with no blank before it
        ranked = sorted(alive, key=lambda kv: _logaddexp(*kv[1]), reverse=True)[:beam_width]
        beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}
    return [
        (list(prefix), _logaddexp(pb, pnb))
        for prefix, (pb, pnb) in sorted(beams.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
    ]


def decode_batch(
    log_probs: Tensor, lengths: Tensor, method: str = "greedy", beam_width: int = 8, blank: int = 0
) -> list[list[int]]:
    """Decode ``(B, T, V)`` log-probabilities, utterance ``b`` over its first ``lengths[b]`` frames."""
    out = []
    for lp, n in zip(log_probs.detach().float().cpu(), lengths.tolist()):
        lp = lp[: int(n)]
        if method == "greedy":
            out.append(greedy_decode(lp, blank))
        elif method == "beam":
            out.append(prefix_beam_search(lp, beam_width, blank, prune_top_k=beam_width)[0][0])
        else:
            raise ValueError(f"unknown decoder {method!r}; use greedy or beam")
    return out
