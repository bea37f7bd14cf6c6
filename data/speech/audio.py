"""Reading audio: soundfile decodes WAV/FLAC (torchaudio 2.11's loader needs torchcodec and FFmpeg),
channels are averaged and torchaudio resamples to the model's rate. A file that cannot be used is
reported by name with the reason, never silently dropped."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from recipes.data.sources import existing_path
from recipes.modules.errors import DataError

__all__ = ["AUDIO_SUFFIXES", "AudioError", "read_audio", "read_many", "AudioFolder"]

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = {".wav", ".flac"}


class AudioError(ValueError):
    """A file that is not usable audio (undecodable, empty, or an unsupported sample format)."""


def read_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Mono float32 samples of ``path`` at ``sample_rate``; raises AudioError with the reason."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot decode ({str(exc).splitlines()[0]})") from None
    if data.shape[0] == 0:
        raise AudioError("has no samples")
    if not np.isfinite(data).all():
        raise AudioError("has non-finite samples (unsupported sample format)")
    wave = torch.from_numpy(data).mean(dim=1)
    if rate != sample_rate:
        wave = torchaudio.functional.resample(wave, rate, sample_rate)
    return wave


def read_many(paths: list[Path], sample_rate: int) -> tuple[list[torch.Tensor], list[int], list[tuple[Path, str]]]:
    """Decode every path: (waveforms, positions of the decoded paths, (path, reason) of the skipped ones)."""
    waves, kept, skipped = [], [], []
    for i, path in enumerate(paths):
        try:
            waves.append(read_audio(path, sample_rate))
            kept.append(i)
        except AudioError as exc:
            skipped.append((Path(path), str(exc)))
            log.warning("skipped %s: %s", path, exc)
    return waves, kept, skipped


class AudioFolder:
    """Audio files to transcribe: every WAV/FLAC under a folder (recursive, sorted) and/or listed paths.

    ``paths`` are the decoded files in row order, ``waves`` their samples and ``skipped`` the
    (path, reason) of the rest; a summary with both counts is logged.
    """

    def __init__(self, sample_rate: int, folder: str | Path | None = None, files: list[str] | None = None) -> None:
        candidates = [
            existing_path(f, "data.predict_paths", "file", "list existing WAV/FLAC files in --data.predict_paths")
            for f in files or []
        ]
        if folder is not None:
            root = Path(folder).expanduser()
            if not root.is_dir():
                raise DataError(
                    f"predict_dir {root} is not a folder", "pass a folder of WAV/FLAC files to --data.predict_dir"
                )
            candidates += sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not candidates:
            raise DataError(
                "nothing to transcribe", "pass --data.predict_dir FOLDER or --data.predict_paths [a.wav, b.flac]"
            )
        self.waves, kept, self.skipped = read_many(candidates, sample_rate)
        self.paths = [candidates[i] for i in kept]
        log.warning("predict: %d audio files to transcribe, %d skipped", len(self.paths), len(self.skipped))
        if not self.paths:
            raise DataError(
                f"no decodable audio among {len(candidates)} files ({len(self.skipped)} skipped)", "check the files"
            )
