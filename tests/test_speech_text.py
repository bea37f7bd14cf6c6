"""Transcript normalization (the english and basic normalizers), the character vocabulary, and CER/WER computed
after normalization."""

from __future__ import annotations

import pytest
from torchmetrics.text import CharErrorRate, WordErrorRate

from recipes.modules.errors import ConfigError
from recipes.modules.speech.text import (
    BLANK,
    BLANK_SYMBOL,
    ENGLISH,
    NORMALIZERS,
    Vocabulary,
    get_normalizer,
    normalize_basic,
    normalize_text,
    spell_number,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Please press 1 to mute, or 8 to exit.", "please press one to mute or eight to exit"),
        ("at least a 28.8 kilobit modem", "at least a twenty eight point eight kilobit modem"),
        ("dial 500, or extension 1234", "dial five hundred or extension one thousand two hundred thirty four"),
        ("1,000 dollars", "one thousand dollars"),
        ("3D audio", "three d audio"),
        ("your party's 'name'", "your party's name"),
        ("Call-Forward on No Answer.", "call forward on no answer"),
        ("at [@]", "at"),
        ("[ascending tones]", ""),
        ("  A.M.  ", "a m"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_digits_are_spelled_the_same_way_as_words():
    assert normalize_text("5") == normalize_text("five") == "five"
    assert [spell_number(n) for n in (0, 13, 40, 99, 100, 101, 2019, 1_000_000)] == [
        "zero",
        "thirteen",
        "forty",
        "ninety nine",
        "one hundred",
        "one hundred one",
        "two thousand nineteen",
        "one million",
    ]


def test_vocabulary_round_trip():
    assert ENGLISH.symbols[BLANK] == BLANK_SYMBOL == "<blank>" and len(ENGLISH) == 29 and ENGLISH.symbols[1] == " "
    text = normalize_text("It's 7 o'clock, Zulu!")
    ids = ENGLISH.encode(text)
    assert BLANK not in ids and ENGLISH.decode(ids) == text == "it's seven o'clock zulu"
    with pytest.raises(ValueError, match="normalize the text first"):
        ENGLISH.encode("Hello")
    assert ENGLISH.encode_known("héllo!") == (ENGLISH.encode("hllo"), "é!")


def test_vocabulary_from_texts_is_sorted_after_the_blank_and_validated():
    vocab = Vocabulary.from_texts(["привет мир", "мир"])
    assert vocab.symbols == (BLANK_SYMBOL, " ", "в", "е", "и", "м", "п", "р", "т")
    assert vocab.decode(vocab.encode("мир привет")) == "мир привет"
    assert Vocabulary(list(vocab.symbols)) == vocab != ENGLISH
    for bad in (["a", "b"], [BLANK_SYMBOL, "a", "a"], [BLANK_SYMBOL, "ab"], [BLANK_SYMBOL]):
        with pytest.raises(ConfigError, match="vocabulary"):
            Vocabulary(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Привет, МИР!", "привет мир"),
        ("Straße  [laughter] GROSS", "strasse gross"),  # casefold, annotation dropped
        ("l'été — c'est ça…", "l'été c'est ça"),  # apostrophes inside words stay, dashes and ellipses go
        ("'quoted' rock'n'roll don\u2019t", "quoted rock'n'roll don't"),
        ("Room 101, ①", "room 101 1"),  # digits stay digits; NFKC folds the circled one
        ("ｆｕｌｌ width", "full width"),
        ("नमस्ते दुनिया", "नमस्ते दुनिया"),  # combining marks are kept
        ("a_b\tc-d", "a b c d"),
        ("[noise]", ""),
    ],
)
def test_basic_normalizer(raw, expected):
    assert normalize_basic(raw) == expected
    assert normalize_basic(expected) == expected  # idempotent: hypotheses are normalized again


def test_normalizers_are_a_registry():
    assert set(NORMALIZERS) == {"english", "basic"}
    assert get_normalizer("english") is normalize_text and get_normalizer("Basic") is normalize_basic
    with pytest.raises(ConfigError, match="english, basic"):
        get_normalizer("klingon")


def test_cer_and_wer_after_normalization():
    refs = [normalize_text("Hello world."), normalize_text("Press 5 now")]
    hyps = [normalize_text("hello, WRLD"), normalize_text("press five now")]
    # "hello world" -> "hello wrld": 1 deletion over 11 + 14 reference characters; 1 substituted word of 2 + 3
    assert CharErrorRate()(hyps, refs).item() == pytest.approx(1 / 25)
    assert WordErrorRate()(hyps, refs).item() == pytest.approx(1 / 5)
