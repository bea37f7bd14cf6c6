"""Transcript text: one normalization for references and hypotheses, and the character vocabulary.

Normalization lowercases, drops bracketed annotations (``[ascending tones]``), spells numbers out in
words ("28.8" -> "twenty eight point eight", "500" -> "five hundred"), turns every other symbol into a
space, keeps apostrophes only inside words ("party's") and collapses whitespace. Models are trained on
and scored against exactly this form, so CER/WER never count a casing or punctuation difference.
"""

from __future__ import annotations

import re

__all__ = ["normalize_text", "spell_number", "VOCAB", "BLANK", "encode", "decode", "vocab_size"]

_ONES = (
    "zero one two three four five six seven eight nine ten "
    "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))

# blank (index 0, required by CTC), space, a-z, apostrophe
VOCAB: tuple[str, ...] = ("<blank>", " ", *"abcdefghijklmnopqrstuvwxyz", "'")
BLANK = 0
_INDEX = {ch: i for i, ch in enumerate(VOCAB) if i != BLANK}


def vocab_size() -> int:
    """Number of CTC output classes, blank included."""
    return len(VOCAB)


def spell_number(n: int) -> str:
    """``n`` (0 <= n < 10**12) in English words without "and": 1234 -> "one thousand two hundred thirty four"."""
    if n < 0 or n >= 10**12:
        raise ValueError(f"cannot spell {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, word in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{spell_number(head)} {word}" + ("" if rest == 0 else " " + spell_number(rest))
    raise AssertionError("unreachable")


def _spell_digits(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def _number(match: re.Match) -> str:
    whole, frac = match.group(1).replace(",", ""), match.group(2)
    # Long digit strings (phone numbers, codes) are read digit by digit; shorter ones as numbers.
    words = spell_number(int(whole)) if len(whole) <= 9 else _spell_digits(whole)
    if frac:
        words += " point " + _spell_digits(frac)
    return f" {words} "


_BRACKETS = re.compile(r"\[[^\]]*\]")
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_NOT_VOCAB = re.compile(r"[^a-z' ]+")
_LOOSE_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")


def normalize_text(text: str) -> str:
    """The normalized transcript (see the module docstring); empty for non-speech such as ``[beep]``."""
    text = _BRACKETS.sub(" ", text.lower()).replace("\u2019", "'")
    text = _NUMBER.sub(_number, text)
    text = _NOT_VOCAB.sub(" ", text)
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def encode(text: str) -> list[int]:
    """Class indices of a normalized text; a character outside the vocabulary is an error (normalize first)."""
    try:
        return [_INDEX[ch] for ch in text]
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary; call normalize_text first") from None


def decode(ids: list[int]) -> str:
    """Text of class indices (blanks dropped, nothing collapsed: CTC collapsing is the decoder's job)."""
    return "".join(VOCAB[i] for i in ids if i != BLANK)
