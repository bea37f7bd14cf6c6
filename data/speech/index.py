"""The usable utterances of a corpus and its seeded split, read without decoding any audio.

A source's rows (``recipes.data.speech.corpora``) are filtered by ``data.include``, timed (from the listing, or
the headers: ``recipes.data.speech.durations``), normalized, and those left without speech (``[beep]``) are
dropped; the rest are split by one seeded permutation (``split_rows``), the split every earlier version made,
so a corpus's split and numbers stay as they were. Transcripts are encoded per split (``encode_targets``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from recipes.data.speech.corpora import get_corpus
from recipes.data.speech.durations import with_durations
from recipes.data.speech.files import Targets
from recipes.data.speech.utterances import Source, Utterances
from recipes.modules.errors import ConfigError, DataError
from recipes.modules.speech.text import Vocabulary

__all__ = ["encode_targets", "read_utterances", "split_rows"]

log = logging.getLogger(__name__)


def _relative(path: str, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _included(utts: Utterances, include: list[str] | None) -> Utterances:
    """The rows whose path (relative to the corpus folder) matches one of the ``include`` glob patterns."""
    if not include:
        return utts
    rows = [i for i, p in enumerate(utts.paths) if any(fnmatch.fnmatch(_relative(p, utts.base), g) for g in include)]
    if not rows:
        raise ConfigError(
            f"data.include {include} matches none of the {len(utts)} recordings",
            f"patterns match paths relative to {utts.base}, e.g. digits/*",
        )
    return utts.take(np.asarray(rows))


def read_utterances(
    corpus: str,
    source: Source,
    include: list[str] | None,
    normalize: Callable[[str], str],
    cache_dir: str | None,
    max_bad_fraction: float,
) -> Utterances:
    """The corpus's utterances with normalized, non-empty transcripts and known durations (see the module
    docstring); files whose header cannot be read are left out, within ``max_bad_fraction``."""
    utts = _included(get_corpus(corpus).read(source), include)
    # Named by the source and the patterns (not the normalization): the headers read are those of the files.
    name = [corpus, *(str(Path(p).expanduser().resolve()) if p else None for p in dataclasses.astuple(source))]
    utts = with_durations(utts, cache_dir, [*name, include], max_bad_fraction, f"corpus {corpus}")
    texts = [normalize(t) for t in utts.texts]
    speech = np.asarray([i for i, t in enumerate(texts) if t], dtype=np.int64)
    if len(speech) < len(utts):
        log.info("speech: %d utterances without speech after normalization left out", len(utts) - len(speech))
    if not len(speech):
        raise DataError(
            f"none of the {len(utts)} transcripts of corpus {corpus} holds speech after normalization",
            "check the transcripts, or pick the normalizer of their language (data.normalization basic)",
        )
    return dataclasses.replace(utts, texts=texts).take(speech)


def split_rows(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """The rows of each split, in the order of one seeded permutation (val first, then test, then train)."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise ConfigError(f"{n} utterances leave nothing to train on", "lower data.val_fraction / data.test_fraction")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}


def encode_targets(texts: list[str], vocabulary: Vocabulary, split: str) -> Targets:
    """The class indices of each normalized transcript; characters outside the vocabulary are dropped from their
    targets, with one warning that counts them and names a few."""
    sequences, dropped, where = [], [], 0
    for text in texts:
        ids, lost = vocabulary.encode_known(text)
        sequences.append(ids)
        if lost:
            dropped.append(lost)
            where += 1
    if dropped:
        chars = "".join(dropped)
        few = sorted(set(chars), key=chars.index)[:8]
        log.warning(
            "%s: %d characters outside the vocabulary dropped from %d transcripts, e.g. %s",
            split,
            len(chars),
            where,
            " ".join(repr(c) for c in few),
        )
    return Targets.of(sequences)
