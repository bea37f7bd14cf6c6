"""Utterances decoded a batch at a time (in the loader's worker processes): the batch's files are read and
resampled (``recipes.data.speech.audio.read_audio``) and padded into the batch the speech models take,
``(waves (B, N), wave lengths (B,), targets (B, S), target lengths (B,), indices (B,))``, inside the dataset's
``__getitem__``, so collating happens in the worker too. A file that fails to decode mid-epoch is left out of
its batch and reported in the ``LoadedBatch`` (the loader logs and counts it, ``recipes.data.batching``).

Set-up holds only paths, durations and encoded transcripts (numpy buffers, nothing a forked worker copies);
``preload`` decodes every file into one flat tensor first, for a corpus that fits in memory (the same batches,
bit for bit).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from recipes.data.batching import LoadedBatch
from recipes.data.columns import StringColumn
from recipes.data.index_cache import progress
from recipes.data.speech.audio import AudioError, read_audio

__all__ = ["SpeechFiles", "Targets", "estimated_lengths", "pad_batch"]


class Targets:
    """Encoded transcripts as one int32 array and int64 offsets (one more than transcripts)."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(values):
            raise ValueError("offsets must start at 0 and end at len(values)")
        self.values, self.offsets = values, offsets

    @classmethod
    def of(cls, sequences: list[list[int]]) -> Targets:
        """Pack the class indices of each transcript (the lists built at set-up, dropped afterwards)."""
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in sequences], out=offsets[1:])
        values = np.fromiter((c for s in sequences for c in s), dtype=np.int32, count=int(offsets[-1]))
        return cls(values, offsets)

    @classmethod
    def empty(cls, n: int) -> Targets:
        """``n`` empty transcripts (audio to transcribe)."""
        return cls(np.zeros(0, np.int32), np.zeros(n + 1, np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]


def estimated_lengths(durations: np.ndarray, sample_rate: int) -> np.ndarray:
    """Samples at ``sample_rate`` of each duration: the length the resampled file decodes to (torchaudio rounds
    up; a header's duration is frames / rate, so the small margin only absorbs float error)."""
    return np.maximum(np.ceil(durations * sample_rate - 1e-6), 1).astype(np.int64)


def pad_batch(waves: list[Tensor], targets: list[np.ndarray], rows: list[int]) -> tuple[Tensor, ...]:
    """(waves (B, N) zero-padded, wave lengths, targets (B, S) zero-padded (S >= 1), target lengths, ``rows``)."""
    wave_lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    padded = torch.zeros(len(waves), int(wave_lengths.max()))
    for row, w in zip(padded, waves):
        row[: len(w)] = w
    tgt = torch.zeros(len(targets), max(1, int(target_lengths.max())), dtype=torch.long)
    for row, t in zip(tgt, targets):
        row[: len(t)] = torch.from_numpy(t.astype(np.int64))
    return padded, wave_lengths, tgt, target_lengths, torch.tensor(rows, dtype=torch.long)


class SpeechFiles(Dataset):
    """The utterances of one split, decoded a batch of indices at a time into a ``LoadedBatch``.

    Args:
        paths: the audio files.
        durations: seconds of each (from a listing or the headers); they give the lengths batches are bucketed by.
        targets: the encoded transcript of each (empty for audio to transcribe).
        sample_rate: every file is resampled to this rate.
    """

    decodes_files = True  # its loader counts and logs undecodable items (recipes.data_health)

    def __init__(self, paths: StringColumn, durations: np.ndarray, targets: Targets, sample_rate: int) -> None:
        if not len(paths) == len(durations) == len(targets):
            raise ValueError("one duration and one target per path")
        self.paths, self.targets, self.sample_rate = paths, targets, sample_rate
        self.lengths = estimated_lengths(np.asarray(durations, dtype=np.float64), sample_rate)
        self._decoded: tuple[Tensor, np.ndarray, list[str]] | None = None  # preload(): samples, offsets, errors

    def __len__(self) -> int:
        return len(self.paths)

    def preload(self) -> None:
        """Decode every file now and keep the samples in memory (one flat float32 tensor); files that do not
        decode are kept as their reasons and reported in their batches, as without preloading."""
        waves, errors = [], []
        for path in progress(self.paths, len(self.paths), "decoding audio"):
            try:
                waves.append(read_audio(path, self.sample_rate))
                errors.append("")
            except AudioError as exc:
                waves.append(torch.zeros(0))
                errors.append(str(exc))
        offsets = np.zeros(len(waves) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in waves], out=offsets[1:])
        self._decoded = (torch.cat(waves) if waves else torch.zeros(0), offsets, errors)

    def wave(self, i: int) -> Tensor:
        """The samples of item ``i``; raises AudioError when it does not decode."""
        if self._decoded is None:
            return read_audio(self.paths[i], self.sample_rate)
        samples, offsets, errors = self._decoded
        if errors[i]:
            raise AudioError(errors[i])
        return samples[offsets[i] : offsets[i + 1]]

    def __getitem__(self, indices: list[int]) -> LoadedBatch:  # type: ignore[override]
        waves, kept, bad = [], [], []
        for i in indices:
            try:
                waves.append(self.wave(i))
            except AudioError as exc:
                bad.append((self.paths[i], str(exc)))
                continue
            kept.append(int(i))
        if not waves:
            return LoadedBatch(None, bad, len(indices))
        return LoadedBatch(pad_batch(waves, [self.targets[i] for i in kept], kept), bad, len(indices))
