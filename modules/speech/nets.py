"""Speech networks for CTC over characters: a log-mel front end and two encoders, built by name.

Every encoder maps ``(features (B, T, n_mels), lengths (B,))`` to ``(logits (B, T/4, vocab), lengths)``:
two stride-2 convolutions subsample time by 4 (40 ms per output frame, still more frames than the
~15 characters a second of speech, as CTC needs), then ``conformer`` (torchaudio's Conformer blocks)
or ``crnn`` (a bidirectional GRU) and a linear layer over the vocabulary.
"""

from __future__ import annotations

from typing import Callable

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recipes.modules.registry import Registry, construct

__all__ = ["LogMelFrontEnd", "ConvSubsampling", "ConformerCTC", "CRNNCTC", "SPEECH_NETS", "build_speech_net"]


class LogMelFrontEnd(nn.Module):
    """Padded waveforms ``(B, N)`` -> per-utterance normalized log-mel frames ``(B, T, n_mels)``, with
    SpecAugment (frequency and time masks) while training.

    Args:
        sample_rate: of the waveforms.
        n_mels: mel bands.
        win_ms: analysis window; hop_ms: frame shift.
        freq_masks, freq_mask_width: SpecAugment frequency masks and their largest width in bands.
        time_masks, time_mask_width: time masks and their largest width in frames (at most 20% of an utterance).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        freq_masks: int = 2,
        freq_mask_width: int = 15,
        time_masks: int = 2,
        time_mask_width: int = 25,
    ) -> None:
        super().__init__()
        win, self.hop = int(sample_rate * win_ms / 1000), int(sample_rate * hop_ms / 1000)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=win, win_length=win, hop_length=self.hop, n_mels=n_mels
        )
        self.masks = nn.ModuleList(
            [torchaudio.transforms.FrequencyMasking(freq_mask_width, iid_masks=True) for _ in range(freq_masks)]
            + [torchaudio.transforms.TimeMasking(time_mask_width, iid_masks=True, p=0.2) for _ in range(time_masks)]
        )

    def frames(self, lengths: Tensor) -> Tensor:
        return lengths // self.hop + 1  # MelSpectrogram pads (center=True)

    def forward(self, waves: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(waves.device.type, enabled=False):  # the FFT and the log want float32
            x = torch.log(self.mel(waves.float()) + 1e-6)  # (B, n_mels, T)
        n = self.frames(lengths)
        valid = (torch.arange(x.shape[-1], device=x.device)[None, :] < n[:, None]).unsqueeze(1)
        count = n.clamp(min=1)[:, None, None]
        mean = (x * valid).sum(-1, keepdim=True) / count
        std = ((((x - mean) * valid) ** 2).sum(-1, keepdim=True) / count).sqrt().clamp(min=1e-3)
        x = ((x - mean) / std) * valid  # padding is exactly 0, so masks and convolutions see silence
        if self.training:
            for mask in self.masks:
                x = mask(x.unsqueeze(1)).squeeze(1)  # iid masks need a channel dimension
        return x.transpose(1, 2), n


class ConvSubsampling(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, mel): 4x fewer frames, projected to ``dim``."""

    def __init__(self, n_mels: int, dim: int, channels: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, 2, 1), nn.ReLU(), nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU()
        )
        self.proj = nn.Linear(channels * ((n_mels + 3) // 4), dim)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv(x.unsqueeze(1))  # (B, C, T/4, F/4)
        x = self.proj(x.permute(0, 2, 1, 3).flatten(2))
        return x, ((lengths + 1) // 2 + 1) // 2


class ConformerCTC(nn.Module):
    """Conv subsampling, torchaudio Conformer blocks, a linear CTC head.

    Args:
        vocab_size: output classes (blank included).
        n_mels: input features per frame.
        dim: model width; heads: attention heads; ffn_dim: feed-forward width.
        layers: Conformer blocks; kernel_size: depthwise convolution kernel; dropout: everywhere.
    """

    def __init__(
        self,
        vocab_size: int,
        n_mels: int = 80,
        dim: int = 144,
        heads: int = 4,
        ffn_dim: int = 576,
        layers: int = 4,
        kernel_size: int = 15,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.subsample = ConvSubsampling(n_mels, dim)
        self.dropout = nn.Dropout(dropout)
        self.encoder = torchaudio.models.Conformer(dim, heads, ffn_dim, layers, kernel_size, dropout=dropout)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x, lengths = self.subsample(x, lengths)
        x, lengths = self.encoder(self.dropout(x), lengths)
        return self.head(x), lengths


def reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence of ``x`` (B, T, ...) reversed within its own length; the padding stays where it is."""
    t = torch.arange(x.shape[1], device=x.device)
    n = lengths.to(x.device)[:, None]
    index = torch.where(t[None, :] < n, n - 1 - t[None, :], t[None, :])
    return x.gather(1, index.view(*index.shape, *(1,) * (x.ndim - 2)).expand_as(x))


class BiRNN(nn.Module):
    """A stack of bidirectional GRU or LSTM layers over padded batches, exact without packing: the backward
    direction reads each sequence reversed within its own length, so it never starts in the padding. Unpacked
    recurrent layers run fused kernels (oneDNN's for LSTM on CPU), where packed sequences step in Python-level
    chunks of the batch.

    Args:
        kind: gru or lstm; dim: input features; hidden: units per direction; layers: stacked layers;
        dropout: between layers.
    """

    def __init__(self, kind: str, dim: int, hidden: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
        sizes = [dim] + [2 * hidden] * (layers - 1)
        self.forward_layers = nn.ModuleList(rnn(d, hidden, batch_first=True) for d in sizes)
        self.backward_layers = nn.ModuleList(rnn(d, hidden, batch_first=True) for d in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
            backward = reverse_within(bwd(reverse_within(x, lengths))[0], lengths)
            x = torch.cat([fwd(x)[0], backward], dim=-1)
        return x


class CRNNCTC(nn.Module):
    """Conv subsampling, a bidirectional recurrent stack (GRU or LSTM), a linear CTC head.

    Args:
        vocab_size: output classes (blank included).
        n_mels: input features per frame.
        dim: width after the convolutions; hidden: recurrent units per direction.
        layers: recurrent layers; dropout: between layers and before the head.
        cell: gru (packed sequences), or ``BiRNN``'s unpacked, exact layers: gru_unpacked or lstm.
    """

    def __init__(
        self,
        vocab_size: int,
        n_mels: int = 80,
        dim: int = 256,
        hidden: int = 256,
        layers: int = 3,
        dropout: float = 0.1,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in ("gru", "gru_unpacked", "lstm"):
            raise ValueError(f"cell must be gru, gru_unpacked or lstm, got {cell!r}")
        self.subsample = ConvSubsampling(n_mels, dim)
        self.cell = cell
        if cell == "gru":
            self.rnn = nn.GRU(
                dim, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout if layers > 1 else 0.0
            )
        else:
            self.rnn = BiRNN(cell.removesuffix("_unpacked"), dim, hidden, layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, vocab_size)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x, lengths = self.subsample(x, lengths)
        if self.cell != "gru":
            x = self.rnn(x, lengths)
        else:  # packing keeps the backward direction from starting in the padding
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.head(self.dropout(x)), lengths


SPEECH_NETS: Registry[Callable[..., nn.Module]] = Registry(
    "speech network", [("conformer", ConformerCTC), ("crnn", CRNNCTC)], setting="model.net"
)


def build_speech_net(name: str, vocab_size: int, n_mels: int, **kwargs) -> nn.Module:
    """Build a CTC speech encoder by name (``conformer`` or ``crnn``)."""
    return construct(name, SPEECH_NETS.lookup(name), vocab_size=vocab_size, n_mels=n_mels, **kwargs)
