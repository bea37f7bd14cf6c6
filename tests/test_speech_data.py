"""Speech data: the Asterisk, LibriSpeech, manifest (JSONL, NeMo, CSV) and audiofolder readers, durations from
listings or cached headers, lazy decoding in the loader (bad files mid-epoch, workers, preload), bucketing and
the split."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from recipes.data.speech.audio import AudioError, read_audio
from recipes.data.speech.batching import LengthBucketSampler, padding_fraction
from recipes.data.speech.corpora import ASTERISK_ROOT, CORPORA, read_asterisk, read_librispeech
from recipes.data.speech.datamodule import SpeechDataModule
from recipes.data.speech.index import encode_targets
from recipes.data.speech.manifests import read_audiofolder, read_manifest
from recipes.data.speech.utterances import Source
from recipes.modules.errors import ConfigError, DataError, RecipeError
from recipes.modules.speech.text import ENGLISH, Vocabulary

CARDS = Path("/usr/share/pocketsphinx/test/data/cards")  # real 16 kHz recordings (pocketsphinx-testdata)


def _tone(path: Path, seconds: float, rate: int = 16000, subtype: str = "PCM_16", hz: float = 440) -> Path:
    t = np.arange(int(round(seconds * rate))) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t), rate, subtype=subtype)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


def _corpus(folder: Path, n: int, rate: int = 16000) -> Path:
    """``n`` tones of 0.2-0.5 s (some at 8 kHz, resampled on reading) and a manifest of them, durations unlisted."""
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        seconds = 0.2 + 0.3 * ((i * 7) % n) / n
        _tone(folder / "audio" / f"{i}.wav", seconds, rate=8000 if i % 3 == 0 else rate, hz=200 + 40 * i)
        rows.append({"audio": f"audio/{i}.wav", "text": f"tone number {i}"})
    return _jsonl(folder / "m.jsonl", rows)


def _dm(manifest: Path, cache: Path, **kwargs) -> SpeechDataModule:
    kwargs = {"val_fraction": 0.25, "test_fraction": 0.0, "batch_size": 3, "num_workers": 0, **kwargs}
    return SpeechDataModule("manifest", manifest=str(manifest), cache_dir=str(cache), **kwargs)


def _batches(loader) -> list[tuple[torch.Tensor, ...]]:
    return [tuple(batch) for batch in loader]


def _tensors(obj, seen=None) -> list[str]:
    """The attributes (walked recursively) of ``obj`` that are tensors."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return ["tensor"]
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else None
    if items is None:
        items = vars(obj).values() if hasattr(obj, "__dict__") else []
    return [t for item in items for t in _tensors(item, seen)]


# --- readers -----------------------------------------------------------------------------------------


def test_asterisk_reader_drops_non_speech():
    utts = read_asterisk()
    wavs = sorted(Path(ASTERISK_ROOT).rglob("*.wav"))
    # 568 recordings; five are tones/beeps/monkeys whose transcripts are only [bracketed] non-speech
    assert len(wavs) == 568 and len(utts) == len(wavs) - 5
    names = {Path(p).stem for p in utts.paths}
    assert not {"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys"} & names
    assert not any("[" in text for text in utts.texts)
    pairs = {str(Path(p).relative_to(ASTERISK_ROOT)): t for p, t in zip(utts.paths, utts.texts)}
    assert pairs["letters/at.wav"] == "at" and np.isnan(utts.durations).all()


def test_asterisk_reader_on_fixture(tmp_path, caplog):
    root = tmp_path / "sounds"
    (root / "digits").mkdir(parents=True)
    _tone(root / "digits" / "5.wav", 0.3)
    _tone(root / "beep.wav", 0.3)
    lines = ["; comment", "digits/5: five", "beep: [a beep tone]", "gone: This file is missing.", ""]
    with gzip.open(tmp_path / "t.txt.gz", "wt") as fh:
        fh.write("\n".join(lines))
    utts = read_asterisk(Source(root, transcripts=tmp_path / "t.txt.gz"))
    assert list(utts.paths) == [str(root / "digits" / "5.wav")] and utts.texts == ["five"]
    assert utts.where(0) == f"{tmp_path / 't.txt.gz'} line 2"
    assert "1 transcripts have no WAV" in caplog.text
    with pytest.raises(RecipeError, match="does not exist"):
        read_asterisk(Source(tmp_path / "nowhere", transcripts=tmp_path / "t.txt.gz"))
    (tmp_path / "bad.txt").write_text("digits/5: five\nno colon here\n")
    with pytest.raises(RecipeError, match="line 2"):
        read_asterisk(Source(root, transcripts=tmp_path / "bad.txt"))


def test_librispeech_reader(tmp_path):
    chapter = tmp_path / "84" / "121123"
    chapter.mkdir(parents=True)
    for i in range(2):
        _tone(chapter / f"84-121123-000{i}.flac", 0.5)
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n"
    )
    utts = read_librispeech(Source(tmp_path))
    assert [(Path(p).name, t) for p, t in zip(utts.paths, utts.texts)] == [
        ("84-121123-0000.flac", "GO DO YOU HEAR"),
        ("84-121123-0001.flac", "BUT IN LESS THAN FIVE MINUTES"),
    ]
    assert read_audio(utts.paths[0], 16000).shape == (8000,)
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 GO\n84-121123-0009 MISSING AUDIO\n")
    with pytest.raises(RecipeError, match="line 2: no 84-121123-0009.flac"):
        read_librispeech(Source(tmp_path))
    with pytest.raises(RecipeError, match="not a folder"):
        read_librispeech(Source(tmp_path / "absent"))


def test_manifest_reader_resolves_relative_paths_and_names_bad_lines(tmp_path):
    (tmp_path / "audio").mkdir()
    _tone(tmp_path / "audio" / "a.wav", 0.2, rate=8000)
    rows = [{"audio": "audio/a.wav", "text": "Seven"}, {"audio": str(CARDS / "001.wav"), "text": "ten of clubs"}]
    manifest = _jsonl(tmp_path / "m.jsonl", rows)
    utts = read_manifest(Source(manifest=manifest))
    assert list(utts.paths) == [str(tmp_path / "audio" / "a.wav"), str(CARDS / "001.wav")]
    assert utts.texts == ["Seven", "ten of clubs"] and utts.lines.tolist() == [1, 2]
    manifest.write_text(json.dumps(rows[0]) + '\n{"audio": "b.wav"}\n')
    with pytest.raises(RecipeError, match='m.jsonl line 2 has no "text" key'):
        read_manifest(Source(manifest=manifest))
    manifest.write_text("not json\n")
    with pytest.raises(RecipeError, match="line 1 is not a JSON object"):
        read_manifest(Source(manifest=manifest))
    manifest.write_text('{"audio": "a.wav", "text": "x", "duration": "long"}\n')
    with pytest.raises(RecipeError, match="line 1: duration 'long' is not a positive number"):
        read_manifest(Source(manifest=manifest))
    manifest.write_text("\n\n")
    with pytest.raises(RecipeError, match="has no entries"):
        read_manifest(Source(manifest=manifest))
    with pytest.raises(RecipeError, match="does not exist"):
        read_manifest(Source(manifest=tmp_path / "none.jsonl"))


def test_nemo_and_csv_manifests_and_audiofolder_give_their_durations(tmp_path):
    for name, seconds in (("a", 0.2), ("b", 0.5), ("c", 0.3)):
        _tone(tmp_path / f"{name}.wav", seconds, rate=8000 if name == "b" else 16000)
    # NeMo: audio_filepath and its own durations (taken as listed: nothing is read from the files)
    nemo = _jsonl(
        tmp_path / "nemo.json",
        [{"audio_filepath": "a.wav", "text": "one", "duration": 0.25}, {"audio_filepath": "b.wav", "text": "two"}],
    )
    utts = read_manifest(Source(manifest=nemo))
    assert utts.texts == ["one", "two"] and utts.durations[0] == 0.25 and np.isnan(utts.durations[1])
    # CSV (text with a comma, quoted) and TSV, with and without a duration column
    (tmp_path / "m.csv").write_text('audio,text,duration\na.wav,"one, two",\nc.wav,three,0.3\n')
    (tmp_path / "m.tsv").write_text("audio_filepath\ttext\nb.wav\tfour\n")
    csv_utts = read_manifest(Source(manifest=tmp_path / "m.csv"))
    assert csv_utts.texts == ["one, two", "three"] and np.isnan(csv_utts.durations[0]) and csv_utts.durations[1] == 0.3
    assert csv_utts.where(1) == f"{tmp_path / 'm.csv'} line 3"
    assert list(read_manifest(Source(manifest=tmp_path / "m.tsv")).paths) == [str(tmp_path / "b.wav")]
    # audiofolder: metadata.csv with file_name and transcription
    (tmp_path / "metadata.csv").write_text("file_name,transcription,duration\na.wav,five,\nb.wav,six,0.5\nc.wav,7,\n")
    folder = read_audiofolder(Source(tmp_path))
    assert folder.texts == ["five", "six", "7"] and list(folder.paths)[1] == str(tmp_path / "b.wav")

    # through the datamodule: listed durations kept, the others read from the headers; lengths at 16 kHz
    dm = SpeechDataModule("folder", root=str(tmp_path), val_fraction=0.0, test_fraction=0.0, cache_dir=str(tmp_path))
    train = dm.dataset("train")
    lengths = dict(zip((Path(p).name for p in train.paths), train.lengths.tolist()))
    assert lengths == {"a.wav": 3200, "b.wav": 8000, "c.wav": 4800}
    assert dm.vocabulary == list(ENGLISH.symbols) and dm.normalization == "english"
    dm = _dm(nemo, tmp_path, val_fraction=0.0)
    assert dict(zip(dm.dataset("train").paths, dm.dataset("train").lengths.tolist())) == {
        str(tmp_path / "a.wav"): 4000,  # the listed 0.25 s, not the file's 0.2 s
        str(tmp_path / "b.wav"): 8000,
    }


SECONDS = (0.2, 0.25, 0.4, 0.5)
WORDS = ("zero", "one", "two", "three")


def _asterisk(root: Path) -> dict:
    (root / "digits").mkdir()
    for i, seconds in enumerate(SECONDS):
        _tone(root / "digits" / f"{i}.wav", seconds, rate=8000)
    with gzip.open(root / "t.txt.gz", "wt") as fh:
        fh.write("".join(f"digits/{i}: Number {w}.\n" for i, w in enumerate(WORDS)))
    return {"root": str(root), "transcripts": str(root / "t.txt.gz")}


def _librispeech(root: Path) -> dict:
    chapter = root / "84" / "121123"
    chapter.mkdir(parents=True)
    for i, seconds in enumerate(SECONDS):
        _tone(chapter / f"84-121123-000{i}.flac", seconds)
    (chapter / "84-121123.trans.txt").write_text(
        "".join(f"84-121123-000{i} NUMBER {w.upper()}\n" for i, w in enumerate(WORDS))
    )
    return {"root": str(root)}


def _manifest(root: Path) -> dict:
    for i, seconds in enumerate(SECONDS):
        _tone(root / f"{i}.wav", seconds)
    return {
        "manifest": str(
            _jsonl(root / "m.jsonl", [{"audio": f"{i}.wav", "text": f"number {w}"} for i, w in enumerate(WORDS)])
        )
    }


def _audiofolder(root: Path) -> dict:
    for i, seconds in enumerate(SECONDS):
        _tone(root / f"{i}.wav", seconds, rate=22050)
    (root / "metadata.csv").write_text(
        "file_name,sentence\n" + "".join(f"{i}.wav,Number {w}\n" for i, w in enumerate(WORDS))
    )
    return {"root": str(root)}


SOURCES = {"asterisk": _asterisk, "librispeech": _librispeech, "manifest": _manifest, "folder": _audiofolder}


def test_every_registered_source_has_a_case_here():
    assert set(SOURCES) == set(CORPORA)


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_every_source_gives_the_same_index_and_decodes_to_its_durations(corpus, tmp_path):
    (tmp_path / "data").mkdir()
    settings = SOURCES[corpus](tmp_path / "data")
    dm = SpeechDataModule(
        corpus,
        **settings,
        val_fraction=0.0,
        test_fraction=0.0,
        test_split="train",
        cache_dir=str(tmp_path),
        num_workers=0,
    )
    utts = dm.utterances()  # in the source's order, timed from the listing or the headers
    assert utts.texts == [f"number {w}" for w in WORDS] and np.allclose(utts.durations, SECONDS, atol=1e-4)
    train, rows = dm.dataset("train"), dm._splits["train"]  # in the seeded split's order
    assert train.lengths.tolist() == [round(16000 * SECONDS[r]) for r in rows]
    waves, wave_lengths, targets, target_lengths, index = next(iter(dm.test_dataloader()))  # test_split train
    assert wave_lengths.tolist() == train.lengths[index.numpy()].tolist()  # the estimate is what decoding gives
    assert [ENGLISH.decode(t[:n].tolist()) for t, n in zip(targets, target_lengths)] == [
        f"number {WORDS[r]}" for r in rows[index.numpy()]
    ]


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("m.jsonl", '{"audio": "a.wav", "text": "one"}\n{"audio": "gone.wav", "text": "two"}\n', "m.jsonl line 2: "),
        ("m.jsonl", '{"audio": "a.wav", "text": "one"}\n{"text": "two"}\n', 'line 2 has no "audio" .or "audio_f'),
        ("m.csv", "audio,transcript\na.wav,one\n", r"m.csv line 1: no column text \(its columns: audio, transcr"),
        ("m.csv", "audio,text\na.wav,one\nb.wav,two,three\n", "m.csv line 3: expected 2 fields"),
        ("m.csv", "audio,text,duration\na.wav,one,0.2\na.wav,two,abc\n", "m.csv line 3: 'abc' in column duration"),
        ("m.csv", "audio,text\n,one\n", "m.csv line 2: no audio"),
        ("m.csv", "audio,text\n", "holds no rows"),
        ("metadata.csv", "file_name,text\na.wav,one\nnone.wav,two\n", "metadata.csv line 3: .*none.wav does not"),
        ("metadata.csv", "file_name,caption\na.wav,one\n", "no column transcription or text or sentence"),
    ],
)
def test_bad_listing_is_one_error_naming_its_file_and_line(tmp_path, file, content, message):
    _tone(tmp_path / "a.wav", 0.2)
    (tmp_path / file).write_text(content)
    if file == "metadata.csv":
        dm = SpeechDataModule("folder", root=str(tmp_path), cache_dir=str(tmp_path / "cache"), test_fraction=0.0)
    else:
        dm = _dm(tmp_path / file, tmp_path / "cache")
    with pytest.raises(DataError, match=message) as err:
        dm.setup("fit")
    assert "\n" not in str(err.value) and "Fix: " in str(err.value)


def test_settings_are_checked_when_the_datamodule_is_built(tmp_path):
    listed = r"unknown corpus 'kaldi'. Fix: choose one of asterisk, librispeech, manifest, folder \(data.corpus\)"
    with pytest.raises(ConfigError, match=listed):
        SpeechDataModule("kaldi")
    with pytest.raises(ConfigError, match="manifest"):
        SpeechDataModule("manifest")
    with pytest.raises(ConfigError, match="needs its folder"):
        SpeechDataModule("folder")
    with pytest.raises(ConfigError, match="english, basic"):
        SpeechDataModule(normalization="russian")
    with pytest.raises(ConfigError, match="from_data"):
        SpeechDataModule(vocabulary="characters")


# --- the index: durations from headers, cached; bad files at set-up --------------------------------------


def test_header_durations_are_cached_and_a_changed_file_is_read_again(tmp_path, monkeypatch):
    manifest = _corpus(tmp_path, 6)
    first = _dm(manifest, tmp_path / "cache")
    first.setup("fit")
    reads = []
    real_info = sf.info

    def refuse(path, *args, **kwargs):
        raise AssertionError(f"read the header of {path}")

    monkeypatch.setattr(sf, "info", refuse)
    again = _dm(manifest, tmp_path / "cache")
    again.setup("fit")  # the cached durations: no header read
    for split in ("fit", "val"):
        assert again.dataset(split).lengths.tolist() == first.dataset(split).lengths.tolist()

    monkeypatch.setattr(sf, "info", lambda path, *a, **k: reads.append(path) or real_info(path, *a, **k))
    changed = tmp_path / "audio" / "2.wav"
    _tone(changed, 0.45)
    third = _dm(manifest, tmp_path / "cache")
    utts = third.utterances()
    assert str(changed) in reads and utts.durations[list(utts.paths).index(str(changed))] == pytest.approx(0.45)
    assert reads == [str(changed)]  # the other files' cached durations are kept


def test_unreadable_headers_at_setup_are_left_out_within_max_bad_fraction(tmp_path, caplog):
    manifest = _corpus(tmp_path, 8)
    (tmp_path / "audio" / "5.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with caplog.at_level(logging.WARNING):
        utts = _dm(manifest, tmp_path / "cache", max_bad_fraction=0.2).utterances()
    assert len(utts) == 7 and str(tmp_path / "audio" / "5.wav") not in list(utts.paths)
    assert "5.wav: cannot decode" in caplog.text
    with pytest.raises(
        DataError, match=r"1 of the 8 audio files .* data.max_bad_fraction 0 .*5.wav \(.*m.jsonl line 6\)"
    ):
        _dm(manifest, tmp_path / "cache", max_bad_fraction=0.0).setup("fit")


def test_setup_holds_no_waveform_and_predict_is_lazy_too(tmp_path):
    manifest = _corpus(tmp_path, 8)
    dm = _dm(manifest, tmp_path / "cache")
    dm.setup("fit")
    assert set(dm.datasets) == {"fit", "val"} and sum(len(d) for d in dm.datasets.values()) == 8
    assert _tensors(dm) == []  # paths, durations and encoded transcripts only
    waves, wave_lengths, targets, target_lengths, index = next(iter(dm.val_dataloader()))
    assert waves.dtype == torch.float32 and waves.shape[1] == int(wave_lengths.max())
    rows = dm._splits["val"][index.numpy()]  # batches are sorted by length; index is the row of the split
    assert [ENGLISH.decode(t[:n].tolist()) for t, n in zip(targets, target_lengths)] == [
        dm.utterances().texts[r] for r in rows
    ]
    assert list(dm.dataset("val").paths) == [dm.utterances().paths[r] for r in dm._splits["val"]]

    predict = _dm(manifest, tmp_path / "cache", predict_dir=str(tmp_path / "audio"))
    predict.setup("predict")
    assert _tensors(predict) == [] and len(predict.prediction_names()["index"]) == 8
    batch = next(iter(predict.predict_dataloader()))
    assert batch[3].tolist() == [0, 0, 0]  # no transcripts to predict
    preloaded = _dm(manifest, tmp_path / "cache", preload=True)
    preloaded.setup("fit")
    assert _tensors(preloaded)  # the in-memory baseline does hold the samples


def test_corrupt_file_mid_epoch_is_skipped_logged_and_counted(tmp_path, caplog):
    manifest = _corpus(tmp_path, 9)
    # a valid header over NaN samples: set-up cannot tell, decoding in the loader can
    sf.write(tmp_path / "audio" / "4.wav", np.full(4000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    dm = _dm(manifest, tmp_path / "cache", val_fraction=0.0, max_bad_fraction=0.2)
    loader = dm.train_dataloader()
    with caplog.at_level(logging.WARNING):
        batches = _batches(loader)
    assert len(batches) == 3 and sum(len(b[4]) for b in batches) == 8 and loader.bad_items == 1
    assert "4.wav: has non-finite samples" in caplog.text
    strict = _dm(manifest, tmp_path / "cache", val_fraction=0.0, max_bad_fraction=0.0).train_dataloader()
    with pytest.raises(DataError, match=r"1 train items could not be read, more than .*4.wav: has non-finite"):
        _batches(strict)


def test_workers_and_preload_give_bit_equal_batches(tmp_path):
    manifest = _corpus(tmp_path, 10)

    def run(**kwargs) -> list[tuple[torch.Tensor, ...]]:
        dm = _dm(manifest, tmp_path / "cache", val_fraction=0.3, **kwargs)
        return _batches(dm.train_dataloader()) + _batches(dm.val_dataloader())

    reference = run()
    assert len(reference) == 4  # 7 training utterances in 3 batches, 3 validation ones in 1
    for other in (run(num_workers=2), run(preload=True), run(preload=True, num_workers=2)):
        assert len(other) == len(reference)
        assert all(torch.equal(a, b) for ours, theirs in zip(reference, other) for a, b in zip(ours, theirs))


def test_characters_outside_the_vocabulary_are_dropped_with_one_warning(tmp_path, caplog):
    # the split depends only on the number of utterances and the seed: learn it, then give one val row a new letter
    manifest = _corpus(tmp_path, 8)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    learn = _dm(manifest, tmp_path / "cache")
    learn.utterances()
    val_row = int(learn._splits["val"][0])
    for i, row in enumerate(rows):
        row["text"] = "Ёлка, мир!" if i == val_row else "мир мир"
    _jsonl(manifest, rows)
    dm = _dm(manifest, tmp_path / "cache", vocabulary="from_data", normalization="basic")
    assert dm.vocabulary == ["<blank>", " ", "и", "м", "р"]
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "val: 4 characters outside the vocabulary dropped from 1 transcripts, e.g. 'ё' 'л' 'к' 'а'" in caplog.text
    vocab = Vocabulary(dm.vocabulary)
    val = dm.dataset("val")
    texts = sorted(vocab.decode(val.targets[i].tolist()) for i in range(len(val)))
    assert texts == [" мир", "мир мир"] and encode_targets(["мир"], vocab, "x").values.tolist() == [3, 2, 4]


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


def test_read_audio_resamples_and_rejects_bad_files(tmp_path):
    wave = read_audio(_tone(tmp_path / "8k.wav", 1.0, rate=8000), 16000)
    assert wave.dtype == torch.float32 and wave.shape == (16000,)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError, match="cannot decode"):
        read_audio(tmp_path / "junk.wav", 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="no samples"):
        read_audio(tmp_path / "empty.wav", 16000)


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
    dm = SpeechDataModule(
        "manifest",
        manifest=str(_jsonl(tmp_path / "m.jsonl", rows)),
        val_fraction=0.2,
        test_fraction=0.2,
        batch_size=2,
        cache_dir=None,
    )
    dm.setup("fit")
    dm.setup("test")
    # the non-speech row is dropped
    assert {k: len(v) for k, v in dm.datasets.items()} == {"fit": 3, "val": 1, "test": 1}
    waves, wave_lengths, targets, target_lengths, index = next(iter(dm.val_dataloader()))
    assert ENGLISH.decode(targets[0, : target_lengths[0]].tolist()) in texts
    assert waves.shape == (1, int(wave_lengths[0])) and index.tolist() == [0]
    assert sum(len(b[0]) for b in dm.train_dataloader()) == 3
