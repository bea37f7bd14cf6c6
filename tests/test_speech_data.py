"""Speech data: the Asterisk, LibriSpeech and manifest readers, audio decoding, bucketing and the split."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from recipes.data.speech.audio import AudioError, read_audio
from recipes.data.speech.batching import LengthBucketSampler, padding_fraction
from recipes.data.speech.corpora import ASTERISK_ROOT, read_asterisk, read_librispeech, read_manifest
from recipes.data.speech.datamodule import SpeechDataModule
from recipes.modules.errors import RecipeError
from recipes.modules.speech.text import decode

CARDS = Path("/usr/share/pocketsphinx/test/data/cards")  # real 16 kHz recordings (pocketsphinx-testdata)


def _tone(path: Path, seconds: float, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), rate, subtype=subtype)
    return path


def test_asterisk_reader_drops_non_speech():
    pairs = read_asterisk()
    wavs = sorted(Path(ASTERISK_ROOT).rglob("*.wav"))
    # 568 recordings; five are tones/beeps/monkeys whose transcripts are only [bracketed] non-speech
    assert len(wavs) == 568 and len(pairs) == len(wavs) - 5
    names = {p.stem for p, _ in pairs}
    assert not {"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys"} & names
    assert not any("[" in text for _, text in pairs)
    assert dict((str(p.relative_to(ASTERISK_ROOT)), t) for p, t in pairs)["letters/at.wav"] == "at"


def test_asterisk_reader_on_fixture(tmp_path, caplog):
    root = tmp_path / "sounds"
    (root / "digits").mkdir(parents=True)
    _tone(root / "digits" / "5.wav", 0.3)
    _tone(root / "beep.wav", 0.3)
    lines = ["; comment", "digits/5: five", "beep: [a beep tone]", "gone: This file is missing.", ""]
    with gzip.open(tmp_path / "t.txt.gz", "wt") as fh:
        fh.write("\n".join(lines))
    assert read_asterisk(root, tmp_path / "t.txt.gz") == [(root / "digits" / "5.wav", "five")]
    assert "1 transcripts have no WAV" in caplog.text
    with pytest.raises(RecipeError, match="does not exist"):
        read_asterisk(tmp_path / "nowhere", tmp_path / "t.txt.gz")
    (tmp_path / "bad.txt").write_text("digits/5: five\nno colon here\n")
    with pytest.raises(RecipeError, match="line 2"):
        read_asterisk(root, tmp_path / "bad.txt")


def test_librispeech_reader(tmp_path):
    chapter = tmp_path / "84" / "121123"
    chapter.mkdir(parents=True)
    for i in range(2):
        _tone(chapter / f"84-121123-000{i}.flac", 0.5)
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n"
    )
    pairs = read_librispeech(tmp_path)
    assert [(p.name, t) for p, t in pairs] == [
        ("84-121123-0000.flac", "GO DO YOU HEAR"),
        ("84-121123-0001.flac", "BUT IN LESS THAN FIVE MINUTES"),
    ]
    assert read_audio(pairs[0][0], 16000).shape == (8000,)
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 GO\n84-121123-0009 MISSING AUDIO\n")
    with pytest.raises(RecipeError, match="line 2: no 84-121123-0009.flac"):
        read_librispeech(tmp_path)
    with pytest.raises(RecipeError, match="not a folder"):
        read_librispeech(tmp_path / "absent")


def test_manifest_reader_resolves_relative_paths_and_names_bad_lines(tmp_path):
    (tmp_path / "audio").mkdir()
    _tone(tmp_path / "audio" / "a.wav", 0.2, rate=8000)
    rows = [{"audio": "audio/a.wav", "text": "Seven"}, {"audio": str(CARDS / "001.wav"), "text": "ten of clubs"}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_manifest(manifest) == [(tmp_path / "audio" / "a.wav", "Seven"), (CARDS / "001.wav", "ten of clubs")]
    manifest.write_text(json.dumps(rows[0]) + '\n{"audio": "b.wav"}\n')
    with pytest.raises(RecipeError, match="m.jsonl line 2"):
        read_manifest(manifest)
    manifest.write_text("not json\n")
    with pytest.raises(RecipeError, match="line 1"):
        read_manifest(manifest)
    with pytest.raises(RecipeError, match="does not exist"):
        read_manifest(tmp_path / "none.jsonl")


def test_read_audio_resamples_and_rejects_bad_files(tmp_path):
    wave = read_audio(_tone(tmp_path / "8k.wav", 1.0, rate=8000), 16000)
    assert wave.dtype == torch.float32 and wave.shape == (16000,)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError, match="cannot decode"):
        read_audio(tmp_path / "junk.wav", 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="no samples"):
        read_audio(tmp_path / "empty.wav", 16000)


def test_bucketing_limits_padding():
    g = torch.Generator().manual_seed(0)
    lengths = (torch.rand(400, generator=g) ** 3 * 30000 + 2000).long().tolist()  # many short, a few long
    bucketed = LengthBucketSampler(lengths, 16, shuffle=True, seed=0)
    batches = list(bucketed)
    assert sorted(i for b in batches for i in b) == list(range(400)) and len(batches) == len(bucketed) == 25
    random_batches = torch.randperm(400, generator=g).split(16)
    assert padding_fraction(batches, lengths) < 0.5 * padding_fraction([b.tolist() for b in random_batches], lengths)
    bucketed.set_epoch(1)
    assert list(bucketed) != batches  # a new order every epoch ...
    bucketed.set_epoch(0)
    assert list(bucketed) == batches  # ... reproducible from the seed


def test_manifest_datamodule_split_and_batches(tmp_path):
    texts = [
        line.split("</s>")[0].replace("<s>", "").strip()
        for line in (CARDS / "cards.transcription").read_text().splitlines()
    ]
    for i in range(1, 6):
        shutil.copy(CARDS / f"00{i}.wav", tmp_path / f"{i}.wav")
    _tone(tmp_path / "tone.wav", 0.5)
    rows = [{"audio": f"{i}.wav", "text": t} for i, t in enumerate(texts, 1)] + [
        {"audio": "tone.wav", "text": "[tone]"}
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dm = SpeechDataModule(
        "manifest", manifest=str(tmp_path / "m.jsonl"), val_fraction=0.2, test_fraction=0.2, batch_size=2
    )
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.splits.items()} == {
        "val": 1,
        "test": 1,
        "train": 3,
    }  # the non-speech row is dropped
    waves, wave_lengths, targets, target_lengths, index = next(iter(dm.val_dataloader()))
    assert decode(targets[0, : target_lengths[0]].tolist()) in texts
    assert waves.shape == (1, int(wave_lengths[0])) and index.tolist() == [0]
    assert sum(len(b[0]) for b in dm.train_dataloader()) == 3
    with pytest.raises(RecipeError, match="manifest"):
        SpeechDataModule("manifest")
