"""The speech encoders' recurrent stacks: the unpacked, exact ``BiRNN`` computes what a packed bidirectional
``nn.GRU`` / ``nn.LSTM`` computes (the same weights give the same outputs on every real frame), whatever the
padding, and the CRNN builds with each cell."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recipes.modules.speech.nets import BiRNN, build_speech_net, reverse_within


def test_reverse_within_keeps_the_padding_in_place():
    x = torch.arange(12.0).view(2, 6)
    assert reverse_within(x, torch.tensor([6, 3])).tolist() == [[5, 4, 3, 2, 1, 0], [8, 7, 6, 9, 10, 11]]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_birnn_equals_a_packed_bidirectional_rnn(kind):
    torch.manual_seed(0)
    reference = {"gru": nn.GRU, "lstm": nn.LSTM}[kind](5, 4, num_layers=2, bidirectional=True, batch_first=True)
    ours = BiRNN(kind, 5, 4, 2).eval()
    for layer in range(2):
        for direction, stack in (("", ours.forward_layers), ("_reverse", ours.backward_layers)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(stack[layer], f"{name}_l0").data.copy_(getattr(reference, f"{name}_l{layer}{direction}"))
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 4, 2])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True)
    got = ours(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(got[b, :n], expected[b, :n], atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "gru_unpacked", "lstm"])
def test_crnn_builds_with_each_cell(cell):
    net = build_speech_net("crnn", 29, 80, dim=16, hidden=8, layers=2, cell=cell)
    logits, lengths = net(torch.randn(2, 40, 80), torch.tensor([40, 25]))
    assert logits.shape == (2, 10, 29) and lengths.tolist() == [10, 7]
