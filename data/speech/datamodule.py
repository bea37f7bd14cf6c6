"""Speech recognition data: a corpus indexed at set-up (paths, transcripts, durations; no audio), split by
utterance, and decoded a batch at a time in the loader's workers, batched by length.

Waveforms stay raw here; the model's front end (``recipes.modules.speech.nets.LogMelFrontEnd``) turns padded
batches into log-mel features with SpecAugment on the model's device. Keeping features in the model
means a checkpoint carries its own feature settings, so ``predict`` on any audio cannot mismatch them; the
vocabulary and the normalization reach the model from here (``model_links``) and are stored with it too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from recipes.data.batching import ResumableLoader, default_workers
from recipes.data.columns import StringColumn
from recipes.data.datamodule import Split, TaskDataModule
from recipes.data.index_cache import DEFAULT_CACHE
from recipes.data.sources import existing_path
from recipes.data.speech.audio import list_audio
from recipes.data.speech.batching import LengthBucketSampler
from recipes.data.speech.corpora import ASTERISK_TRANSCRIPTS, get_corpus
from recipes.data.speech.durations import with_durations
from recipes.data.speech.espeak import synthesize_variants
from recipes.data.speech.files import SpeechFiles, Targets
from recipes.data.speech.index import encode_targets, read_utterances, split_rows
from recipes.data.speech.utterances import Source, Utterances, utterances
from recipes.modules.errors import ConfigError, DataError
from recipes.modules.speech.text import ENGLISH, Vocabulary, get_normalizer

__all__ = ["SpeechDataModule", "VOCABULARIES"]

log = logging.getLogger(__name__)
VOCABULARIES = ("english", "from_data")
STAGE_SPLITS = {"fit": ("fit", "val"), "validate": ("val",), "predict": ("test",), None: ("fit", "val", "test")}


class SpeechDataModule(TaskDataModule):
    """A speech corpus with a seeded utterance-level train/val/test split, streamed from disk.

    Args:
        corpus: asterisk (the Asterisk English prompts), librispeech (a LibriSpeech split folder), manifest (JSONL,
            NeMo's keys too, or CSV/TSV: audio, text, optional duration) or folder (a Hugging Face audiofolder:
            ``data.root`` with metadata.csv of file_name, transcription).
        root: the Asterisk sounds folder, the LibriSpeech split folder or the audiofolder; None: the Asterisk default.
        manifest: the manifest file for corpus manifest.
        transcripts: the Asterisk transcript file (``core-sounds-en.txt.gz``).
        val_fraction: utterances held out for validation.
        test_fraction: utterances held out for testing.
        seed: seed of the split, the batch order and the espeak-ng variants.
        batch_size: utterances per batch.
        sample_rate: every file is resampled to this rate.
        max_seconds: training utterances longer than this are left out (memory); evaluation keeps all.
        espeak_augment: espeak-ng synthesized variants added per training utterance (0: none).
        espeak_cache: folder caching the synthesized WAVs.
        test_split: the split that ``test`` evaluates; ``train`` measures how well the training data is fit.
        predict_dir: a folder of WAV/FLAC files to transcribe with ``predict``.
        predict_paths: WAV/FLAC files to transcribe; with neither, predict transcribes the test split.
        include: keep only recordings whose path (relative to the corpus folder) matches one of these
            glob patterns, e.g. ``["digits/*"]``; None keeps all.
        vocabulary: the model's characters: english (blank, space, a-z, apostrophe) or from_data (every character
            of the normalized training transcripts); evaluation characters outside it are dropped, with a warning.
        normalization: of transcripts and hypotheses: english (numbers spelled out, a-z) or basic (any language:
            NFKC, casefold, letters, marks and digits).
        num_workers: processes decoding audio; None: one a core, at most 4.
        preload: decode the whole corpus into memory at set-up (the same batches; for corpora that fit in memory).
        max_bad_fraction: share of a split's files that may fail to decode (each logged, counted per epoch as
            ``<stage>/bad_items``) before the run stops; also the share of unreadable headers set-up accepts.
        cache_dir: where durations read from file headers are cached; null: read them every time.
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py).
    model_links: ClassVar[dict[str, str]] = {
        "vocabulary": "vocabulary",
        "normalization": "normalization",
        "sample_rate": "sample_rate",
    }

    def __init__(
        self,
        corpus: str = "asterisk",
        root: str | None = None,
        manifest: str | None = None,
        transcripts: str = ASTERISK_TRANSCRIPTS,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        batch_size: int = 16,
        sample_rate: int = 16000,
        max_seconds: float = 35.0,
        espeak_augment: int = 0,
        espeak_cache: str = "runs/.cache/espeak",
        test_split: Literal["train", "val", "test"] = "test",
        predict_dir: str | None = None,
        predict_paths: list[str] | None = None,
        include: list[str] | None = None,
        vocabulary: str = "english",
        normalization: str = "english",
        num_workers: int | None = None,
        preload: bool = False,
        max_bad_fraction: float = 0.001,
        cache_dir: str | None = DEFAULT_CACHE,
    ) -> None:
        super().__init__()
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                "val_fraction and test_fraction must be in [0, 1) and sum below 1",
                "fix data.val_fraction / data.test_fraction",
            )
        checks = (batch_size >= 1, sample_rate >= 1000, espeak_augment >= 0, max_seconds > 0)
        if not all(checks) or not 0 <= max_bad_fraction < 1 or (num_workers is not None and num_workers < 0):
            raise ConfigError(
                "batch_size >= 1, sample_rate >= 1000, espeak_augment >= 0, max_seconds > 0, max_bad_fraction in "
                "[0, 1) and num_workers >= 0 are required",
                "fix the data settings",
            )
        needs = get_corpus(corpus).needs
        if needs == "manifest" and not manifest:
            raise ConfigError(f"corpus {corpus} needs a manifest file", "set data.manifest to a JSONL or CSV file")
        if needs == "root" and not root:
            raise ConfigError(f"corpus {corpus} needs its folder", "set data.root, e.g. to LibriSpeech/dev-clean")
        if vocabulary not in VOCABULARIES:
            raise ConfigError(f"unknown vocabulary {vocabulary!r}", f"set data.vocabulary to one of {VOCABULARIES}")
        self.normalize = get_normalizer(normalization)
        # Paths the user gave must exist now; only the defaults (None, the Asterisk transcripts) are looked up later.
        for key, value, kind, fix in (
            ("root", root, "folder", "pass the corpus folder, or leave data.root unset for the Asterisk prompts"),
            ("manifest", manifest, "file", 'pass a JSONL file of {"audio": ..., "text": ...} lines or a CSV'),
            (
                "transcripts",
                None if transcripts == ASTERISK_TRANSCRIPTS else transcripts,
                "file",
                f"pass the Asterisk transcript file, or leave data.transcripts unset for {ASTERISK_TRANSCRIPTS}",
            ),
            ("predict_dir", predict_dir, "folder", "pass a folder of WAV/FLAC files"),
        ):
            if value is not None:
                existing_path(value, f"data.{key}", kind, fix)
        for path in predict_paths or []:
            existing_path(path, "data.predict_paths", "file", "list existing WAV/FLAC files in --data.predict_paths")
        self.corpus, self.include = corpus.lower(), include
        self.source = Source(*(Path(p) if p else None for p in (root, manifest, transcripts)))
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.batch_size, self.sample_rate, self.max_seconds = batch_size, sample_rate, max_seconds
        self.test_split = test_split
        self.espeak_augment, self.espeak_cache = espeak_augment, espeak_cache
        self.predict_dir, self.predict_paths = predict_dir, predict_paths
        self.vocabulary_source, self.normalization = vocabulary, normalization.lower()
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.preload, self.max_bad_fraction, self.cache_dir = preload, max_bad_fraction, cache_dir
        self._utterances: Utterances | None = None
        self._splits: dict[str, np.ndarray] = {}
        self._vocabulary: Vocabulary | None = None
        self.datasets: dict[str, SpeechFiles] = {}

    # --- what the model is built from (linked by the CLI) -------------------------------------------
    @property
    def vocabulary(self) -> list[str]:
        """The model's classes, blank first (from_data reads the index: the CLI links it at instantiation)."""
        return list(self.vocab().symbols)

    def vocab(self) -> Vocabulary:
        """The ``Vocabulary`` that encodes the targets (from_data: every character of the training transcripts)."""
        if self._vocabulary is None:
            if self.vocabulary_source == "english":
                self._vocabulary = ENGLISH
            else:
                utts = self.utterances()
                self._vocabulary = Vocabulary.from_texts(utts.texts[i] for i in self._splits["train"].tolist())
        return self._vocabulary

    # --- the index ----------------------------------------------------------------------------------
    def utterances(self) -> Utterances:
        """Every usable utterance of the corpus (normalized transcripts, durations), split into ``_splits``."""
        if self._utterances is None:
            utts = read_utterances(
                self.corpus, self.source, self.include, self.normalize, self.cache_dir, self.max_bad_fraction
            )
            self._splits = split_rows(len(utts), self.val_fraction, self.test_fraction, self.seed)
            self._utterances = utts
        return self._utterances

    def _files(self, utts: Utterances, name: str) -> SpeechFiles:
        targets = encode_targets(utts.texts, self.vocab(), name)
        return SpeechFiles(utts.paths, utts.durations, targets, self.sample_rate)

    def _synthesized(self, texts: list[str]) -> Utterances:
        """espeak-ng variants of ``texts`` (normalized transcripts), timed from their headers."""
        pairs = synthesize_variants(sorted(set(texts)), self.espeak_augment, self.espeak_cache, self.seed)
        synth = utterances([str(p) for p, _ in pairs], [self.normalize(t) for _, t in pairs], Path(self.espeak_cache))
        key = ["espeak", str(Path(self.espeak_cache).expanduser().resolve())]
        return with_durations(synth, self.cache_dir, key, self.max_bad_fraction, "the espeak-ng variants")

    def _fit_files(self) -> SpeechFiles:
        """The training split's utterances up to ``max_seconds``, then the espeak-ng variants of their texts."""
        utts = self.utterances()
        train = self._splits["train"]
        fit = utts.take(train[utts.durations[train] <= self.max_seconds])
        real = len(fit)
        if self.espeak_augment:
            synth = self._synthesized(fit.texts)
            durations = [*fit.durations.tolist(), *synth.durations.tolist()]
            fit = utterances([*fit.paths, *synth.paths], fit.texts + synth.texts, fit.base, durations)
        log.info(
            "speech: %d train (%d synthesized), %d val, %d test utterances",
            len(fit),
            len(fit) - real,
            len(self._splits["val"]),
            len(self._splits["test"]),
        )
        return self._files(fit, "train")

    def dataset(self, split: str) -> SpeechFiles:
        """The dataset of ``fit`` (training), ``train``, ``val``, ``test`` or ``predict`` (built once)."""
        if split not in self.datasets:
            if split == "predict":
                dataset = self._predict_files()
            elif split == "fit":
                dataset = self._fit_files()
            else:
                dataset = self._files(self.utterances().take(self._splits[split]), split)
            if self.preload:
                dataset.preload()
            self.datasets[split] = dataset
        return self.datasets[split]

    def _predict_files(self) -> SpeechFiles:
        files = [str(Path(p).expanduser()) for p in self.predict_paths or []]
        if self.predict_dir is not None:
            files += list_audio(Path(self.predict_dir).expanduser())
        if not files:
            raise DataError(
                "nothing to transcribe", "pass --data.predict_dir FOLDER or --data.predict_paths [a.wav, b.flac]"
            )
        found = utterances(files, [""] * len(files), Path(self.predict_dir or "."))
        key = ["predict", str(Path(self.predict_dir).resolve()) if self.predict_dir else None, self.predict_paths]
        kept = with_durations(found, self.cache_dir, key, self.max_bad_fraction, "the files to transcribe")
        log.warning("predict: %d audio files to transcribe, %d skipped", len(kept), len(found) - len(kept))
        return SpeechFiles(kept.paths, kept.durations, Targets.empty(len(kept)), self.sample_rate)

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and (self.predict_dir or self.predict_paths):
            self.dataset("predict")
            return
        for split in STAGE_SPLITS.get(stage, (self.test_split,)):
            self.dataset(split)

    # --- loaders ------------------------------------------------------------------------------------
    def _predict_split(self) -> str:
        return "predict" if self.predict_dir or self.predict_paths else "test"

    def loader(self, split: Split) -> ResumableLoader:
        """Length-bucketed batches; ``predict``: of a folder/list of files, or of the test split
        (``prediction_names()["index"]`` names each row)."""
        source = {"train": "fit", "val": "val", "test": self.test_split, "predict": self._predict_split()}[split]
        dataset = self.dataset(source)
        sampler = LengthBucketSampler(dataset.lengths, self.batch_size, shuffle=split == "train", seed=self.seed)
        return ResumableLoader(
            dataset,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            split=split,
            max_bad_fraction=self.max_bad_fraction,
        )

    def prediction_names(self) -> dict[str, StringColumn]:
        """The file of each predicted row (``index`` -> path), for the predictions CSV."""
        return {"index": self.dataset(self._predict_split()).paths}
