"""Where a speech corpus's (audio path, transcript) pairs come from: the Asterisk English prompts, the
LibriSpeech directory layout, or a JSONL manifest. Every reader fails with a ConfigError that names the
missing path or the malformed line, and returns raw transcripts (normalization is
``recipes.modules.speech.text``'s job)."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path

from recipes.modules.errors import DataError

__all__ = [
    "ASTERISK_ROOT",
    "ASTERISK_TRANSCRIPTS",
    "ASTERISK_HELP",
    "read_asterisk",
    "read_librispeech",
    "read_manifest",
]

log = logging.getLogger(__name__)

ASTERISK_ROOT = "/usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
ASTERISK_HELP = (
    "apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en (name the -wav package), "
    "or set data.root / data.transcripts"
)
_NON_SPEECH = re.compile(r"\[[^\]]*\]")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_asterisk(
    root: str | Path = ASTERISK_ROOT, transcripts: str | Path = ASTERISK_TRANSCRIPTS
) -> list[tuple[Path, str]]:
    """Asterisk prompts: ``name: Transcript.`` lines (``;`` comments) and ``<root>/<name>.wav``.

    Entries that are only bracketed non-speech (``[ascending tones]``) are dropped; brackets inside
    speech (``at [@]``) are annotations and removed. A transcript whose WAV is missing is logged and skipped.
    """
    root, transcripts = Path(root).expanduser(), Path(transcripts).expanduser()
    for path, what in ((root, "folder"), (transcripts, "transcript file")):
        if not path.exists():
            raise DataError(f"Asterisk {what} {path} does not exist", ASTERISK_HELP)
    pairs, missing = [], []
    with _open_text(transcripts) as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            name, sep, text = line.partition(":")
            if not sep or not name.strip():
                raise DataError(
                    f"{transcripts} line {number} is not 'name: transcript': {line[:60]!r}", "fix or remove that line"
                )
            text = _NON_SPEECH.sub(" ", text).strip()
            if not text.strip(" .?!"):
                continue  # non-speech: tones, beeps
            wav = root / f"{name.strip()}.wav"
            if wav.is_file():
                pairs.append((wav, text))
            else:
                missing.append(wav)
    if missing:
        log.warning("Asterisk: %d transcripts have no WAV file and were skipped, e.g. %s", len(missing), missing[0])
    if not pairs:
        raise DataError(f"no Asterisk recording under {root} matches {transcripts}", ASTERISK_HELP)
    return pairs


def read_librispeech(root: str | Path) -> list[tuple[Path, str]]:
    """LibriSpeech layout: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines
    ``<speaker>-<chapter>-<utterance> TRANSCRIPT`` and the audio beside it as ``<id>.flac`` (or ``.wav``)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"LibriSpeech root {root} is not a folder", "set data.root to e.g. LibriSpeech/train-clean-100")
    pairs = []
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        with open(trans, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                utt, _, text = line.strip().partition(" ")
                if not text:
                    raise DataError(
                        f"{trans} line {number} has no transcript after the utterance id", "fix or remove that line"
                    )
                audio = next(
                    (
                        trans.parent / f"{utt}{ext}"
                        for ext in (".flac", ".wav")
                        if (trans.parent / f"{utt}{ext}").is_file()
                    ),
                    None,
                )
                if audio is None:
                    raise DataError(
                        f"{trans} line {number}: no {utt}.flac or {utt}.wav beside it",
                        "restore the audio file or remove the line",
                    )
                pairs.append((audio, text))
    if not pairs:
        raise DataError(
            f"no <speaker>/<chapter>/*.trans.txt under {root}", "point data.root at a LibriSpeech split folder"
        )
    return pairs


def read_manifest(manifest: str | Path) -> list[tuple[Path, str]]:
    """A JSONL manifest: one ``{"audio": path, "text": transcript}`` a line; relative paths are
    resolved against the manifest's folder, so a corpus folder can move as a whole."""
    path = Path(manifest).expanduser()
    if not path.is_file():
        raise DataError(
            f"manifest {path} does not exist", 'set data.manifest to a JSONL file of {"audio": ..., "text": ...} lines'
        )
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                audio, text = row["audio"], row["text"]
                if not isinstance(audio, str) or not isinstance(text, str):
                    raise TypeError("audio and text must be strings")
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    f'{path} line {number} is not a {{"audio": path, "text": transcript}} object ({exc})',
                    "fix that line",
                ) from None
            audio_path = Path(audio).expanduser()
            pairs.append((audio_path if audio_path.is_absolute() else path.parent / audio_path, text))
    if not pairs:
        raise DataError(f"manifest {path} has no entries", 'add {"audio": ..., "text": ...} lines')
    return pairs
