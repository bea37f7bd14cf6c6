"""Reading audio: soundfile decodes WAV/FLAC (torchaudio 2.11's loader needs torchcodec and FFmpeg),
channels are averaged and torchaudio resamples to the model's rate. ``audio_seconds`` reads only a file's
header. A file that cannot be used is reported by name with the reason, never silently dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

__all__ = ["AUDIO_SUFFIXES", "AudioError", "audio_seconds", "list_audio", "read_audio"]

AUDIO_SUFFIXES = (".wav", ".flac")


class AudioError(ValueError):
    """A file that is not usable audio (undecodable, empty, or an unsupported sample format)."""


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def audio_seconds(path: str | Path) -> float:
    """The duration of ``path`` from its header alone (nothing decoded); raises AudioError with the reason."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise AudioError(f"cannot decode ({_first_line(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError("has no samples")
    return info.frames / info.samplerate


def read_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Mono float32 samples of ``path`` at ``sample_rate``; raises AudioError with the reason."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise AudioError(f"cannot decode ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError("has no samples")
    if not np.isfinite(data).all():
        raise AudioError("has non-finite samples (unsupported sample format)")
    wave = torch.from_numpy(data).mean(dim=1)
    if rate != sample_rate:
        wave = torchaudio.functional.resample(wave, rate, sample_rate)
    return wave


def list_audio(folder: Path) -> list[str]:
    """Every WAV/FLAC file under ``folder`` (recursively), sorted."""
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
