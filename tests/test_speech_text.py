"""Transcript normalization, the character vocabulary, and CER/WER computed after normalization."""

from __future__ import annotations

import pytest
from torchmetrics.text import CharErrorRate, WordErrorRate

from recipes.modules.speech.text import BLANK, VOCAB, decode, encode, normalize_text, spell_number


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
    assert VOCAB[BLANK] == "<blank>" and len(VOCAB) == 29 and VOCAB[1] == " "
    text = normalize_text("It's 7 o'clock, Zulu!")
    ids = encode(text)
    assert BLANK not in ids and decode(ids) == text == "it's seven o'clock zulu"
    with pytest.raises(ValueError, match="normalize_text"):
        encode("Hello")


def test_cer_and_wer_after_normalization():
    refs = [normalize_text("Hello world."), normalize_text("Press 5 now")]
    hyps = [normalize_text("hello, WRLD"), normalize_text("press five now")]
    # "hello world" -> "hello wrld": 1 deletion over 11 + 14 reference characters; 1 substituted word of 2 + 3
    assert CharErrorRate()(hyps, refs).item() == pytest.approx(1 / 25)
    assert WordErrorRate()(hyps, refs).item() == pytest.approx(1 / 5)
