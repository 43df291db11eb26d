"""Machine-made values: tokens, blobs, beacons, sensor strings, minified code.

Browsers and SDKs send values no person typed: session tokens and JWTs, base64
or hex of binary data, analytics beacons, bot-detection sensor strings, packed
or minified script state. Their characters are close to random, so a rule that
looks for a few punctuation characters (``~'``, ``';``, ``|``) finds them by
chance: measured on real browsing traffic, that was most of our false blocks
(issue 15, item 4).

This module measures, with no list of known values, whether the text around a
rule's match is machine-made (:func:`machine_made`: long, no blanks, high
character entropy, frequent changes of character class), and whether the match
is one such a text produces by chance (:func:`incidental`): short, with no
word in it (a keyword, a tag name, a command name is never excused), and
expected to occur by chance given the characters the text around it is made
of. A quote inside a base64 blob is never incidental (base64 has no quote);
nor is a value that only looks random before decoding, since the measure reads
the normalized text the rules read (a double-URL-encoded attack is decoded by
then). Readable minified code (identifiers that are words) is not noise either:
an XSS payload is code too. A match found incidental counts half, not nothing
(``Inspector``): padding an attack with noise never removes its other evidence.

Pure functions over ``str``; cost only where a rule matched.

References:
    Shannon entropy of tokens as a secret/token detector: truffleHog, detect-secrets
    (``HighEntropyString``); character-class transitions: Yelp detect-secrets'
    base64/hex heuristics.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["WINDOW", "NoiseStats", "incidental", "machine_made", "noise_stats"]

WINDOW = 128
"""Characters read on each side of a match: the measure is local, so noise far
away does not excuse a readable attack, nor a readable value spoil a blob."""
MIN_CHARS = 48
"""Shorter texts are never called machine-made: too few characters to tell."""
MAX_BLANKS = 0.01
"""Share of whitespace above which a text is prose, markup or code someone wrote."""
MIN_ENTROPY = 4.2
"""Bits per character of random letters and digits (lower-cased base64: ~4.7 over
128 characters; English words run together: ~4.0)."""
MIN_ENTROPY_DENSE = 3.4
"""Enough entropy when the character class changes very often (hex: ~3.8)."""
MIN_TRANSITIONS = 0.28
"""Share of adjacent characters of different classes (letter, digit, symbol):
random base64 ~0.31 lower-cased, hex ~0.47, sensor strings more; words ~0.05."""
DENSE_TRANSITIONS = 0.4
MIN_DISTINCT_TRIGRAMS = 0.8
"""Share of distinct 3-character sequences: random data hardly repeats itself
(~0.98 over 128 characters), while obfuscation does (``..2f..2f..2f``,
``${env:x:-j}${env:x:-n}``): a repeated pattern is written, not noise."""
MAX_VOWELS = 0.33
"""Share of vowels among letters above which the letters spell words (English ~0.4;
random letters 6/26 ~0.23, up to 0.3 over a short window). Hex digits (a-f, a
third vowels) are exempt, and so are texts with fewer than :data:`MIN_LETTERS`
letters (sensor strings: mostly digits)."""
MIN_LETTERS = 12
MAX_INCIDENTAL = 6
"""Longest match that can be chance: a few punctuation characters."""
MIN_CHANCE = 0.01
"""How many times the match is expected to occur by chance in the text around it,
drawn with that text's character frequencies, for it to be chance: ``~'`` in a
sensor string full of ``~`` and ``'`` is; ``${j${`` in random padding is not (an
obfuscated Log4Shell), nor a quote in base64 (no quote there at all)."""


@dataclass(frozen=True, slots=True)
class NoiseStats:
    """Character statistics of one text."""

    length: int
    entropy: float  # Shannon entropy, bits per character
    transitions: float  # share of adjacent pairs whose character classes differ
    blanks: float  # share of whitespace
    distinct: float  # share of distinct trigrams among all trigrams
    vowels: float  # share of vowels among the letters (0 without MIN_LETTERS of them)


_VOWELS = frozenset("aeiouyAEIOUY")
_HEX_LETTERS = frozenset("abcdefABCDEF")


def _klass(char: str) -> int:
    if char.isalpha():
        return 0
    if char.isdigit():
        return 1
    if char.isspace():
        return 2
    return 3


def noise_stats(text: str) -> NoiseStats:
    """The statistics :func:`machine_made` decides on."""
    length = len(text)
    if length == 0:
        return NoiseStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    counts = Counter(text)
    entropy = -sum(n / length * math.log2(n / length) for n in counts.values())
    blanks = sum(n for char, n in counts.items() if char.isspace()) / length
    classes = [_klass(char) for char in text]
    changes = sum(1 for a, b in pairwise(classes) if a != b)
    trigrams = max(1, length - 2)
    distinct = len({text[i : i + 3] for i in range(trigrams)}) / trigrams
    letters = [char for char in text if char.isalpha()]
    vowels = 0.0
    if len(letters) >= MIN_LETTERS and not set(letters) <= _HEX_LETTERS:
        vowels = sum(1 for char in letters if char in _VOWELS) / len(letters)
    return NoiseStats(length, entropy, changes / max(1, length - 1), blanks, distinct, vowels)


def machine_made(text: str) -> bool:
    """Whether ``text`` looks generated rather than written: long enough, almost no
    blanks, hardly repeating itself, letters that spell no words, and both high
    character entropy and frequent class changes."""
    stats = noise_stats(text)
    if stats.length < MIN_CHARS or stats.blanks > MAX_BLANKS:
        return False
    if stats.distinct < MIN_DISTINCT_TRIGRAMS or stats.vowels > MAX_VOWELS:
        return False
    if stats.transitions >= DENSE_TRANSITIONS:
        return stats.entropy >= MIN_ENTROPY_DENSE
    return stats.transitions >= MIN_TRANSITIONS and stats.entropy >= MIN_ENTROPY


def incidental(text: str, start: int, end: int) -> bool:
    """Whether the match ``text[start:end]`` is one a machine-made text produces by
    chance: at most :data:`MAX_INCIDENTAL` characters, no two letters in a row (no
    word, keyword or name), likely to occur by chance in the text around it
    (:data:`MIN_CHANCE`), and that text (:data:`WINDOW` characters each side)
    machine-made."""
    match = text[start:end]
    if not match or len(match) > MAX_INCIDENTAL:
        return False
    if any(a.isalpha() and b.isalpha() for a, b in pairwise(match)):
        return False
    around = text[max(0, start - WINDOW) : start] + text[end : end + WINDOW]
    size = len(around)
    if size < MIN_CHARS:
        return False
    chance = float(size)
    for char in match:
        chance *= around.count(char) / size
    return chance >= MIN_CHANCE and machine_made(around)
