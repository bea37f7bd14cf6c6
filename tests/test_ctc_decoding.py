"""Greedy CTC decoding and the prefix beam search on hand-made probability matrices, checked against
the exact label-sequence probabilities found by enumerating every alignment."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest
import torch

from recipes.modules.speech.decoding import decode_batch, greedy_decode, prefix_beam_search


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    return tuple(k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1]))


def exact_sequence_probs(probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """P(label sequence) summed over all V**T alignments (small T and V only)."""
    out: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        out[_collapse(path)] += math.prod(probs[t, k].item() for t, k in enumerate(path))
    return out


def test_greedy_collapses_repeats_and_drops_blanks():
    # best path: a a - a b b -  -> "a a b" (the blank separates the two a's)
    best = [1, 1, 0, 1, 2, 2, 0]
    probs = torch.full((7, 3), 0.1)
    probs[range(7), best] = 0.8
    assert greedy_decode(probs.log()) == [1, 1, 2]


def test_beam_search_beats_greedy():
    # each frame prefers blank (0.6), but "a" has three alignments (a-, -a, aa): 0.24 + 0.24 + 0.16 = 0.64 > 0.36
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(probs.log()) == []
    beams = prefix_beam_search(probs.log(), beam_width=4)
    assert beams[0][0] == [1] and math.exp(beams[0][1]) == pytest.approx(0.64)
    assert beams[1][0] == [] and math.exp(beams[1][1]) == pytest.approx(0.36)


def test_repeated_label_needs_a_blank():
    # "aa" is only reachable through a, blank, a; "a" gathers every other a/blank pattern
    probs = torch.tensor([[0.2, 0.8], [0.5, 0.5], [0.2, 0.8]])
    exact = exact_sequence_probs(probs)
    beams = dict((tuple(seq), math.exp(lp)) for seq, lp in prefix_beam_search(probs.log(), beam_width=10))
    assert beams[(1, 1)] == pytest.approx(0.8 * 0.5 * 0.8) == pytest.approx(exact[(1, 1)])
    assert beams[(1,)] == pytest.approx(exact[(1,)])
    assert sum(beams.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_matches_exhaustive_search(seed):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(5, 3, generator=g) * 2, dim=1)
    exact = exact_sequence_probs(probs)
    beams = prefix_beam_search(probs.log(), beam_width=len(exact))
    assert len(beams) == len(exact)
    for seq, lp in beams:
        assert math.exp(lp) == pytest.approx(exact[tuple(seq)], rel=1e-5)
    assert tuple(beams[0][0]) == max(exact, key=exact.get)


def test_decode_batch_respects_lengths():
    probs = torch.full((2, 4, 3), 0.05)
    probs[0, range(4), [1, 0, 2, 2]] = 0.9
    probs[1, range(4), [2, 1, 1, 1]] = 0.9  # frames past length 2 must be ignored
    lengths = torch.tensor([4, 2])
    assert decode_batch(probs.log(), lengths, "greedy") == [[1, 2], [2, 1]]
    assert decode_batch(probs.log(), lengths, "beam", beam_width=4) == [[1, 2], [2, 1]]
