"""Speech recognition data: a corpus read once into memory, split by utterance, batched by length.

Waveforms stay raw here; the model's front end (``recipes.modules.speech.nets.LogMelFrontEnd``) turns padded
batches into log-mel features with SpecAugment on the model's device. Keeping features in the model
means a checkpoint carries its own feature settings, so ``predict`` on any audio cannot mismatch them.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import ClassVar, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from recipes.data.batching import ResumableLoader
from recipes.data.sources import existing_path
from recipes.data.speech.audio import AudioFolder, read_many
from recipes.data.speech.batching import LengthBucketSampler, UtteranceSet, collate_utterances
from recipes.data.speech.corpora import (
    ASTERISK_ROOT,
    ASTERISK_TRANSCRIPTS,
    read_asterisk,
    read_librispeech,
    read_manifest,
)
from recipes.data.speech.espeak import synthesize_variants
from recipes.modules.errors import ConfigError
from recipes.modules.speech.text import decode, encode, normalize_text, vocab_size

__all__ = ["SpeechDataModule"]

log = logging.getLogger(__name__)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class SpeechDataModule(L.LightningDataModule):
    """A speech corpus with a seeded utterance-level train/val/test split.

    Args:
        corpus: asterisk (the Asterisk English prompts), librispeech (a LibriSpeech split folder) or manifest (JSONL).
        root: the Asterisk sounds folder or the LibriSpeech split folder; None means the Asterisk default.
        manifest: the JSONL manifest for corpus manifest.
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
    """

    # This datamodule's attribute -> the model argument the CLI sets from it (recipes/cli.py, when both exist).
    model_links: ClassVar[dict[str, str]] = {"vocab_size": "vocab_size", "sample_rate": "sample_rate"}

    def __init__(
        self,
        corpus: Literal["asterisk", "librispeech", "manifest"] = "asterisk",
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
    ) -> None:
        super().__init__()
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                "val_fraction and test_fraction must be in [0, 1) and sum below 1",
                "fix data.val_fraction / data.test_fraction",
            )
        if batch_size < 1 or sample_rate < 1000 or espeak_augment < 0 or max_seconds <= 0:
            raise ConfigError(
                "batch_size >= 1, sample_rate >= 1000, espeak_augment >= 0 and max_seconds > 0 are required",
                "fix the data settings",
            )
        if corpus == "manifest" and not manifest:
            raise ConfigError("corpus manifest needs a manifest file", "set data.manifest to a JSONL file")
        if corpus == "librispeech" and not root:
            raise ConfigError("corpus librispeech needs its folder", "set data.root to e.g. LibriSpeech/dev-clean")
        # Paths the user gave must exist now; only the defaults (None, the Asterisk transcripts) are looked up later.
        for key, value, kind, fix in (
            (
                "root",
                root,
                "folder",
                "pass the Asterisk sounds folder or a LibriSpeech split folder, "
                "or leave data.root unset for the Asterisk prompts",
            ),
            ("manifest", manifest, "file", 'pass a JSONL file of {"audio": ..., "text": ...} lines'),
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
        self.corpus, self.root, self.manifest, self.transcripts = corpus, root, manifest, transcripts
        self.val_fraction, self.test_fraction, self.seed, self.batch_size = (
            val_fraction,
            test_fraction,
            seed,
            batch_size,
        )
        self.sample_rate, self.max_seconds, self.test_split = sample_rate, max_seconds, test_split
        self.espeak_augment, self.espeak_cache = espeak_augment, espeak_cache
        self.predict_dir, self.predict_paths = predict_dir, predict_paths
        self.include = include
        self.splits: dict[str, UtteranceSet] = {}
        self.split_paths: dict[str, list[Path]] = {}
        self.predict_set: AudioFolder | None = None

    @property
    def vocab_size(self) -> int:
        return vocab_size()

    def read_pairs(self) -> list[tuple[Path, str]]:
        """The corpus's (audio path, raw transcript) pairs, filtered by ``include``."""
        if self.corpus == "asterisk":
            pairs, base = read_asterisk(self.root or ASTERISK_ROOT, self.transcripts), Path(self.root or ASTERISK_ROOT)
        elif self.corpus == "librispeech":
            pairs, base = read_librispeech(self.root), Path(self.root)
        else:
            pairs, base = read_manifest(self.manifest), Path(self.manifest).parent
        if not self.include:
            return pairs
        kept = [(p, t) for p, t in pairs if any(fnmatch.fnmatch(_relative(p, base), pat) for pat in self.include)]
        if not kept:
            raise ConfigError(
                f"data.include {self.include} matches none of the {len(pairs)} recordings",
                f"patterns match paths relative to {base}, e.g. digits/*",
            )
        return kept

    def _load(self, pairs: list[tuple[Path, str]]) -> tuple[list[torch.Tensor], list[list[int]], list[Path]]:
        texts = [normalize_text(t) for _, t in pairs]
        pairs = [(p, t) for (p, _), t in zip(pairs, texts) if t]
        waves, kept, _ = read_many([p for p, _ in pairs], self.sample_rate)
        return waves, [encode(pairs[i][1]) for i in kept], [pairs[i][0] for i in kept]

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and (self.predict_dir or self.predict_paths):
            if self.predict_set is None:
                self.predict_set = AudioFolder(self.sample_rate, self.predict_dir, self.predict_paths)
            return
        if self.splits:
            return
        waves, targets, paths = self._load(self.read_pairs())
        n = len(waves)
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        if n - n_val - n_test < 1:
            raise ConfigError(
                f"{n} utterances leave nothing to train on", "lower data.val_fraction / data.test_fraction"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        parts = {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}
        for name, idx in parts.items():
            self.splits[name] = UtteranceSet([waves[i] for i in idx], [targets[i] for i in idx])
            self.split_paths[name] = [paths[i] for i in idx]
        train_idx = [i for i in parts["train"] if len(waves[i]) <= self.max_seconds * self.sample_rate]
        train_w, train_t = [waves[i] for i in train_idx], [targets[i] for i in train_idx]
        if self.espeak_augment:
            texts = sorted({decode(targets[i]) for i in train_idx})
            synth = synthesize_variants(texts, self.espeak_augment, self.espeak_cache, self.seed)
            s_waves, s_targets, _ = self._load(synth)
            train_w, train_t = train_w + s_waves, train_t + s_targets
        self.fit_set = UtteranceSet(train_w, train_t)
        log.info(
            "speech: %d train (%d synthesized), %d val, %d test utterances",
            len(train_w),
            len(train_w) - len(train_idx),
            n_val,
            n_test,
        )

    def _loader(self, dataset: UtteranceSet, shuffle: bool) -> DataLoader:
        sampler = LengthBucketSampler(dataset.lengths, self.batch_size, shuffle=shuffle, seed=self.seed)
        return ResumableLoader(dataset, sampler=sampler, collate_fn=collate_utterances)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.fit_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["val"], shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits[self.test_split], shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Batches of a folder/list of files, or of the test split; ``predict_names[index]`` names each row."""
        dataset = UtteranceSet(self.predict_set.waves) if self.predict_set is not None else self.splits["test"]
        return self._loader(dataset, shuffle=False)

    @property
    def predict_names(self) -> list[str]:
        paths = self.predict_set.paths if self.predict_set is not None else self.split_paths["test"]
        return [str(p) for p in paths]
