"""Where a corpus's utterances come from, one reader a source and one index shape (``Utterances``): the
Asterisk English prompts, the LibriSpeech directory layout, a manifest (JSONL, NeMo's keys, CSV/TSV) and a
Hugging Face audiofolder (``recipes.data.speech.manifests``). ``CORPORA`` registers them by name.

Readers return raw transcripts (normalization is ``recipes.modules.speech.text``'s job) and durations where the
source gives them (NaN elsewhere: read from the file headers later, ``recipes.data.speech.durations``); no audio
is decoded. A malformed source fails with one DataError naming the file and line.
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from recipes.data.speech.manifests import read_audiofolder, read_manifest
from recipes.data.speech.utterances import Source, Utterances, utterances
from recipes.modules.errors import DataError
from recipes.modules.registry import Registry

__all__ = [
    "ASTERISK_HELP",
    "ASTERISK_ROOT",
    "ASTERISK_TRANSCRIPTS",
    "CORPORA",
    "Corpus",
    "get_corpus",
    "read_asterisk",
    "read_librispeech",
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


def read_asterisk(source: Source = Source()) -> Utterances:
    """Asterisk prompts: ``name: Transcript.`` lines (``;`` comments) in ``source.transcripts`` and
    ``<root>/<name>.wav`` (root: ``source.root`` or the system package's folder).

    Entries that are only bracketed non-speech (``[ascending tones]``) are dropped; brackets inside
    speech (``at [@]``) are annotations and removed. A transcript whose WAV is missing is logged and skipped:
    the transcript file lists more prompts than a sounds package installs.
    """
    root = Path(source.root or ASTERISK_ROOT).expanduser()
    transcripts = Path(source.transcripts or ASTERISK_TRANSCRIPTS).expanduser()
    for path, what in ((root, "folder"), (transcripts, "transcript file")):
        if not path.exists():
            raise DataError(f"Asterisk {what} {path} does not exist", ASTERISK_HELP)
    paths, texts, lines, missing = [], [], [], []
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
                paths.append(str(wav))
                texts.append(text)
                lines.append(number)
            else:
                missing.append(wav)
    if missing:
        log.warning("Asterisk: %d transcripts have no WAV file and were skipped, e.g. %s", len(missing), missing[0])
    if not paths:
        raise DataError(f"no Asterisk recording under {root} matches {transcripts}", ASTERISK_HELP)
    return utterances(paths, texts, root, listing=transcripts, lines=lines)


def read_librispeech(source: Source) -> Utterances:
    """LibriSpeech layout: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines
    ``<speaker>-<chapter>-<utterance> TRANSCRIPT`` and the audio beside it as ``<id>.flac`` (or ``.wav``)."""
    root = Path(source.root or "").expanduser()
    if source.root is None or not root.is_dir():
        raise DataError(f"LibriSpeech root {root} is not a folder", "set data.root to e.g. LibriSpeech/train-clean-100")
    paths, texts = [], []
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        names = {p.name for p in trans.parent.iterdir()}  # one listing a chapter, not two stats an utterance
        with open(trans, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                utt, _, text = line.strip().partition(" ")
                if not text:
                    raise DataError(
                        f"{trans} line {number} has no transcript after the utterance id", "fix or remove that line"
                    )
                audio = next((f"{utt}{ext}" for ext in (".flac", ".wav") if f"{utt}{ext}" in names), None)
                if audio is None:
                    raise DataError(
                        f"{trans} line {number}: no {utt}.flac or {utt}.wav beside it",
                        "restore the audio file or remove the line",
                    )
                paths.append(str(trans.parent / audio))
                texts.append(text)
    if not paths:
        raise DataError(
            f"no <speaker>/<chapter>/*.trans.txt under {root}", "point data.root at a LibriSpeech split folder"
        )
    return utterances(paths, texts, root)


@dataclass(frozen=True)
class Corpus:
    """A registered source: its reader, the setting that names it (None: it has a default), and a description."""

    read: Callable[[Source], Utterances]
    needs: Literal["root", "manifest"] | None
    description: str


CORPORA: Registry[Corpus] = Registry(
    "corpus",
    [
        ("asterisk", Corpus(read_asterisk, None, "the Asterisk English prompts (data.root, data.transcripts)")),
        ("librispeech", Corpus(read_librispeech, "root", "a LibriSpeech split folder (data.root)")),
        ("manifest", Corpus(read_manifest, "manifest", "a JSONL or CSV/TSV manifest of audio, text[, duration]")),
        ("folder", Corpus(read_audiofolder, "root", "a Hugging Face audiofolder: data.root with metadata.csv")),
    ],
    setting="data.corpus",
)


def get_corpus(name: str) -> Corpus:
    """The source registered as ``name``; an unknown name is a ConfigError listing the names."""
    return CORPORA.lookup(name)
