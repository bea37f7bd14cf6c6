"""Transcript text: normalizers for references and hypotheses (a registry by name), and the character vocabulary.

Two normalizers:

* ``english`` lowercases, drops bracketed annotations (``[ascending tones]``), spells numbers out in words
  ("28.8" -> "twenty eight point eight", "500" -> "five hundred"), turns every other symbol into a space, keeps
  apostrophes only inside words ("party's") and collapses whitespace;
* ``basic`` is the same for any language without English rules: Unicode NFKC, casefold, drop ``[bracketed]``
  annotations, every character that is not a letter, mark or digit becomes a space (an apostrophe between
  letters stays), whitespace collapsed; digits stay digits.

Models are trained on and scored against exactly the normalized form, so CER/WER never count a casing or
punctuation difference. A ``Vocabulary`` maps the normalized characters to CTC classes, the blank first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable

from recipes.modules.errors import ConfigError
from recipes.modules.registry import Registry

__all__ = [
    "BLANK",
    "BLANK_SYMBOL",
    "ENGLISH",
    "NORMALIZERS",
    "Normalizer",
    "Vocabulary",
    "check_saved_vocabulary",
    "get_normalizer",
    "normalize_basic",
    "normalize_text",
    "spell_number",
]

_ONES = (
    "zero one two three four five six seven eight nine ten "
    "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))

BLANK = 0  # CTC's blank is class 0 in every vocabulary
BLANK_SYMBOL = "<blank>"


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
    """The ``english`` normalization (see the module docstring); empty for non-speech such as ``[beep]``."""
    text = _BRACKETS.sub(" ", text.lower()).replace("\u2019", "'")
    text = _NUMBER.sub(_number, text)
    text = _NOT_VOCAB.sub(" ", text)
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


class _WordCharacters(dict):
    """``str.translate`` table: a letter, mark, digit or apostrophe maps to itself, anything else to a space.
    Filled on first sight of each character, so a corpus costs one ``unicodedata`` lookup per distinct character."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        value = ch if ch == "'" or unicodedata.category(ch)[0] in "LMN" else " "
        self[code] = value
        return value


_WORD_CHARACTERS = _WordCharacters({0x2019: "'"})  # the typographic apostrophe is an apostrophe


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


def _drop_loose_apostrophes(text: str) -> str:
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch == "'" and not (0 < i < len(chars) - 1 and _is_letter(chars[i - 1]) and _is_letter(chars[i + 1])):
            chars[i] = " "
    return "".join(chars)


def normalize_basic(text: str) -> str:
    """The language-neutral ``basic`` normalization (see the module docstring)."""
    # NFKC again after casefold: casefolding can leave a string that is not NFKC ("ǰ" -> "ǰ" decomposed).
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = _BRACKETS.sub(" ", text).translate(_WORD_CHARACTERS)
    if "'" in text:
        text = _drop_loose_apostrophes(text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Normalizer:
    """A registered normalization: its name, the function, and what it is for."""

    name: str
    normalize: Callable[[str], str]
    description: str


NORMALIZERS: Registry[Normalizer] = Registry(
    "normalization",
    (
        (n.name, n)
        for n in (
            Normalizer(
                "english", normalize_text, "English: lowercase, numbers spelled out in words, a-z and apostrophes"
            ),
            Normalizer("basic", normalize_basic, "any language: NFKC, casefold, letters, marks and digits kept"),
        )
    ),
    setting="data.normalization",
)


def get_normalizer(name: str) -> Callable[[str], str]:
    """The normalizing function registered as ``name``; an unknown name is a ConfigError listing the names."""
    return NORMALIZERS.lookup(name).normalize


class Vocabulary:
    """CTC output classes: the blank (index 0), then one character a class.

    Args:
        symbols: ``BLANK_SYMBOL`` followed by distinct single characters (as stored in a checkpoint's hparams).
    """

    def __init__(self, symbols: Iterable[str]) -> None:
        self.symbols = tuple(symbols)
        chars = self.symbols[1:]
        if not self.symbols or self.symbols[0] != BLANK_SYMBOL:
            raise ConfigError(
                f"a vocabulary starts with {BLANK_SYMBOL!r}, got {list(self.symbols[:3])}",
                "pass the list the datamodule gives (data.vocabulary), blank first",
            )
        bad = [c for c in chars if len(c) != 1]
        if bad or len(set(chars)) != len(chars) or not chars:
            raise ConfigError(
                f"a vocabulary holds distinct single characters after the blank, got {len(chars)} entries"
                + (f" such as {bad[0]!r}" if bad else ""),
                "pass the list the datamodule gives (data.vocabulary)",
            )
        self._index = {ch: i for i, ch in enumerate(self.symbols) if i != BLANK}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """Every character of ``texts`` (normalized transcripts), sorted by code point, after the blank."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls((BLANK_SYMBOL, *sorted(chars)))

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.symbols == self.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} classes: {''.join(self.symbols[1:])!r})"

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    def encode(self, text: str) -> list[int]:
        """Class indices of a normalized text; a character outside the vocabulary is a ValueError."""
        try:
            return [self._index[ch] for ch in text]
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary; normalize the text first") from None

    def encode_known(self, text: str) -> tuple[list[int], str]:
        """(class indices of the characters in the vocabulary, the characters left out, in order)."""
        index = self._index
        ids = [index[ch] for ch in text if ch in index]
        dropped = "" if len(ids) == len(text) else "".join(ch for ch in text if ch not in index)
        return ids, dropped

    def decode(self, ids: Iterable[int]) -> str:
        """Text of class indices (blanks dropped, nothing collapsed: CTC collapsing is the decoder's job)."""
        return "".join(self.symbols[i] for i in ids if i != BLANK)


# blank, space, a-z, apostrophe: what ``normalize_text`` leaves
ENGLISH = Vocabulary((BLANK_SYMBOL, " ", *"abcdefghijklmnopqrstuvwxyz", "'"))


def check_saved_vocabulary(saved: list[str] | None, vocabulary: Vocabulary) -> None:
    """A ConfigError when a checkpoint's vocabulary (its hparams; None: English) differs from the model's: the
    weights' classes would be read as other characters."""
    theirs = Vocabulary(saved) if saved is not None else ENGLISH
    if theirs != vocabulary:
        raise ConfigError(
            f"the checkpoint was trained with a vocabulary of {len(theirs)} classes ({''.join(theirs.symbols[1:])!r}), "
            f"the data gives {len(vocabulary)} ({''.join(vocabulary.symbols[1:])!r})",
            "use the data settings it was trained with (data.corpus, data.vocabulary, data.normalization)",
        )
