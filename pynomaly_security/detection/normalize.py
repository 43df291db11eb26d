"""Turns one raw value into the canonical text the rules match.

Applied once per value, in this order (each step bounded):

1. ``%uXXXX`` (IIS) and overlong UTF-8 (``%c0%af`` = ``/``) escapes decoded;
2. percent-decoding repeated while it changes the value, at most
   ``MAX_DECODE_ROUNDS`` times (double encoding ``%252e`` is common);
3. HTML entities (``&lt;``, ``&#x3c;``, ``&#60``) unescaped, twice at most;
4. Unicode NFKC, which folds full-width forms (full-width ``<script>``) to ASCII;
5. null bytes and other C0 control characters except tab/newline/CR dropped
   (``<scr\\0ipt>``), except a NUL that ends the value or a name (``x.txt%00``,
   kept: it truncates the name in C-based file APIs); quote look-alikes
   (U+02BC, primes) read as quotes; case folded;
6. JavaScript ``\\u0076``/``\\x3c`` escapes decoded, to lower case like the rest
   (they are decoded after case folding: ``\\x3c\\x53cript`` is ``<script``);
7. SQL comment tricks: ``/**/`` becomes a space and MySQL version comments
   ``/*!50000select*/`` keep their content; every run of blanks (including
   vertical tab, form feed, NBSP) becomes one space; newlines are kept;
8. a tag sent through a 7-bit channel (U+00BC name U+00BE) read as ``<name>``.

``+`` as space is the caller's business: it applies to query strings and
form bodies only, which :mod:`~pynomaly_security.detection.extract` decodes
with ``parse_qsl``. Backslashes are kept; path rules accept both slashes.

Cost is linear in the value and metered (issue 12: inspection cost is bounded
per request). Every step is one pass over the text, cut into pieces of about
:data:`CHUNK_CHARS` characters at places where cutting changes nothing (before
a ``%`` or ``&`` that starts an escape, between characters NFKC cannot join,
outside a run of blanks...), so the text is the one the whole value would give,
while the caller's ``spend`` (the request's CPU budget) is told of each piece
before it is worked on, and the text after NFKC (which can expand a character
to 18) is held to ``max_chars``. The patterns are single character classes,
fixed-length escapes and runs that cannot overlap, so Python's ``re`` runs them
in linear time (a run of NULs and an unclosed ``/*`` used to take quadratic
time: ``"/*a" * 20000`` took 15 s); Python's ``re`` is used instead of RE2
because the ``re2`` wrapper's ``sub`` costs several microseconds per call.
NFKC itself reorders combining marks by insertion (quadratic in a run of
them): it works on pieces of :data:`_NFKC_PIECE` characters, and a piece is cut
within a run of more than :data:`_NFKC_RUN` characters that may combine
(UAX #15's stream-safe format allows 30), the only place where a cut can make
the text differ from the whole value's, in marks no real text has.

References:
    OWASP evasion cheat sheets; CRS transformations ``t:urlDecodeUni``,
    ``t:htmlEntityDecode``, ``t:replaceComments``, ``t:compressWhitespace``;
    UAX #15 (Unicode normalization forms), section 13, Stream-Safe Text Format:
    https://www.unicode.org/reports/tr15/#Stream_Safe_Text_Format
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

from pynomaly_security.detection.types import InspectionRefused

__all__ = ["CHUNK_CHARS", "MAX_DECODE_ROUNDS", "Spend", "is_plain", "normalize", "percent_decode"]

MAX_DECODE_ROUNDS = 3
CHUNK_CHARS = 8192
"""Characters a step works on between two reports to ``spend``."""

Spend = Callable[[int], None]

_PLAIN = re.compile(r"[A-Za-z0-9_-]*")
_PCT_U = re.compile(r"(?i)%u([0-9a-f]{4})")
# Overlong 2- and 3-byte UTF-8 forms of ASCII, percent-encoded (%c0%ae = '.').
_OVERLONG2 = re.compile(r"(?i)%(c[01])%([89ab][0-9a-f])")
_OVERLONG3 = re.compile(r"(?i)%e0%(8[0-9a-f])%([89ab][0-9a-f])")
# Runs of percent escapes, decoded together as UTF-8 bytes: what urllib's
# unquote(errors="replace") does (a literal character between two escapes is
# ASCII, which ends any byte sequence, so decoding run by run is the same).
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# Decimal character references html.unescape would pass to int(): leading zeros
# collapsed, and values of 8 digits or more (all past U+10FFFF, which unescape
# answers with U+FFFD) replaced, since int() refuses more than 4,300 digits.
_CHARREF_ZEROS = re.compile(r"&#0{2,}")
_CHARREF_HUGE = re.compile(r"&#0?[1-9][0-9]{7,};?")
# A tag sent through a 7-bit channel: with the high bit stripped, U+00BC and U+00BE
# are < and > (CVE-2006-0449-style US-ASCII XSS). Read as a tag only in a tag's
# shape (U+00BC, a name, U+00BE; after NFKC "1/4" and "3/4" with U+2044; a UTF-8
# lead byte read as Latin-1 may sit before U+00BE), so "1 1/4 cups" stays text.
# Decoded here, the rules then read an ordinary tag (``<script>``).
_SEVEN_BIT_TAG = re.compile(
    "(?:\u00bc|1\u20444)(/?[a-z][a-z0-9]{0,15})[\u00e2\u00f0]?(?:\u00be|3\u20444)"
)
_SQL_VERSION_COMMENT = re.compile(r"/\*!\d*")
# Newlines are kept (CRLF injection rules need them); other blanks collapse. A
# lone space is left alone (not matched), so prose costs no substitution per word.
_WS = re.compile(
    r" [ \t\x0b\x0c\xa0\u2000-\u200b\u3000]+"
    r"|[\t\x0b\x0c\xa0\u2000-\u200b\u3000][ \t\x0b\x0c\xa0\u2000-\u200b\u3000]*"
)
# Slash look-alikes NFKC keeps: division/set-minus signs, IIS private-use forms.
_SLASHES = str.maketrans(
    {
        "\u2215": "/",
        "\u2044": "/",
        "\u2216": "\\",
        "\uefc8": "/",
        "\uf025": "/",
        # Curly quotes: some drivers and charsets fold them to ASCII quotes.
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00b4": "'",
        # Quote look-alikes NFKC keeps, which best-fit charset conversions (and
        # some drivers) turn into ASCII quotes: modifier letters, primes.
        "\u02bc": "'",
        "\u02b9": "'",
        "\u02bb": "'",
        "\u02bd": "'",
        "\u02c8": "'",
        "\u2032": "'",
        "\u201b": "'",
        "\u201a": "'",
        "\u02ba": '"',
        "\u02ee": '"',
        "\u2033": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u301d": '"',
        "\u301e": '"',
    }
)
# The same characters, found in one C pass: translating a long text through the
# table's dict costs 0.1 µs per character, found or not.
_LOOKALIKES = re.compile("[" + "".join(chr(code) for code in _SLASHES) + "]")
_JS_ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|x([0-9a-f]{2}))")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# A NUL run that ends the value or a name (x.txt%00, x.php%00.jpg) truncates it
# in C-based file APIs: it is kept (as one NUL) for the rules (group 1); other
# control characters are dropped. The run is matched from its first NUL only
# and possessively, so a long run costs one pass, not one per NUL.
_CONTROLS = re.compile(r"((?<!\x00)\x00++(?=$|[.?&/\s]))|[\x00-\x08\x0e-\x1f\x7f]")

# Where a step may cut the text (the first match at or after the wanted place).
_CUT_OVERLONG = re.compile(r"(?<!%[cC][01])(?<!%[eE]0)(?<!%[eE]0%8[0-9a-fA-F])%")
_CUT_ESCAPES = re.compile(r"(?<!%)(?<!%.)(?:[^%]|%(?![89abAB][0-9a-fA-F]))", re.DOTALL)
_CUT_CONTROLS = re.compile(r"(?<=[^\x00])")
_CUT_VERSION = re.compile(r"(?<!\*)[^*!0-9]")
_CUT_WS = re.compile(r"[^ \t\x0b\x0c\xa0\u2000-\u200b\u3000]")
_ASCII = re.compile(r"[\x00-\x7f]")
_NFKC_ASCII_LOOKAHEAD = 64
_NFKC_RUN = 32
# NFKC works in small pieces: it sorts a run of combining marks by insertion
# (8,192 alternating marks: 112 ms in one call, 256: well under 1 ms), and a
# character can become 18.
_NFKC_PIECE = 256
# Starters that compose with the character before them (the second character of
# a canonical pair, Unicode 14: Bengali, Oriya, Tamil... vowel signs), besides
# the Hangul vowel and trailing jamo; tests check the list against unicodedata.
_COMPOSES_BACKWARD = frozenset(
    "\u09be\u09d7\u0b3e\u0b56\u0b57\u0bbe\u0bd7\u0cc2\u0cd5\u0cd6\u0d3e\u0d57\u0dcf"
    "\u0ddf\u0fb5\u0fb7\u102e\u1b35\U00011127\U0001133e\U00011357\U000114b0"
    "\U000114ba\U000114bd\U000115af\U00011930"
)


def _free(_: int) -> None:
    """``spend`` when nothing meters the work."""


def is_plain(value: str) -> bool:
    """Letters, digits, ``_`` and ``-`` only: nothing to detect.

    Dots are not plain: ``java.lang.Runtime`` and ``a.php`` are signals."""
    return _PLAIN.fullmatch(value) is not None and "--" not in value


def _overlong2(match: re.Match[str]) -> str:
    hi, lo = match.group(1), match.group(2)
    return chr(((int(hi, 16) & 0x1F) << 6) | (int(lo, 16) & 0x3F))


def _overlong3(match: re.Match[str]) -> str:
    mid, lo = match.group(1), match.group(2)
    return chr(((int(mid, 16) & 0x3F) << 6) | (int(lo, 16) & 0x3F))


def _pct_u(text: str) -> str:
    return _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), text)


def _overlong2s(text: str) -> str:
    return _OVERLONG2.sub(_overlong2, text)


def _overlong3s(text: str) -> str:
    return _OVERLONG3.sub(_overlong3, text)


def _escape_run(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "replace")


def _unquote(text: str) -> str:
    return _ESCAPES.sub(_escape_run, text) if "%" in text else text


def _unescape(text: str) -> str:
    if "&#" in text:
        if "&#00" in text:
            text = _CHARREF_ZEROS.sub("&#0", text)
        text = _CHARREF_HUGE.sub("\ufffd", text)
    return html.unescape(text)


def _lookalike(match: re.Match[str]) -> str:
    return match.group().translate(_SLASHES)


def _lookalikes(text: str) -> str:
    return _LOOKALIKES.sub(_lookalike, text)


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _keep_truncating(match: re.Match[str]) -> str:
    return "\x00" if match.group(1) else ""


def _controls(text: str) -> str:
    return _CONTROLS.sub(_keep_truncating, text) if _CONTROL.search(text) else text


def _js_char(match: re.Match[str]) -> str:
    # Lower-cased: this step runs after case folding, and ``\x53`` (``S``) left as it
    # is made ``<Script`` out of ``\x3c\x53cript``, which rules in lower case miss.
    return chr(int(match.group(1) or match.group(2), 16)).lower()


def _js(text: str) -> str:
    return _JS_ESCAPE.sub(_js_char, text) if "\\" in text else text


def _version_comments(text: str) -> str:
    # MySQL version comments: keep the content, drop the markers.
    return _SQL_VERSION_COMMENT.sub(" ", text).replace("*/", " ")


def _blanks(text: str) -> str:
    return _WS.sub(" ", text)


def _before(char: str) -> Callable[[str, int], int]:
    """Cut before the next ``char``: the step's escapes start with it and hold no other."""

    def cut(text: str, at: int) -> int:
        found = text.find(char, at)
        return len(text) if found < 0 else found

    return cut


def _at(pattern: re.Pattern[str]) -> Callable[[str, int], int]:
    def cut(text: str, at: int) -> int:
        found = pattern.search(text, at)
        return len(text) if found is None else found.start()

    return cut


def _starts_fresh(char: str) -> bool:
    """Whether NFKC can never join ``char`` to what precedes it: its decomposition
    starts with a starter that composes with nothing before it."""
    first = unicodedata.normalize("NFKD", char)[0]
    return (
        unicodedata.combining(first) == 0
        and first not in _COMPOSES_BACKWARD
        and not ("\u1161" <= first <= "\u1175" or "\u11a8" <= first <= "\u11c2")
    )


def _nfkc_cut(text: str, at: int) -> int:
    """Before an ASCII character (never joined to anything before it), else
    before a character that starts fresh, else (a run of marks) after
    :data:`_NFKC_RUN` characters."""
    end = len(text)
    found = _ASCII.search(text, at, min(end, at + _NFKC_ASCII_LOOKAHEAD))
    if found is not None:
        return found.start()
    stop = min(end, at + _NFKC_RUN)
    for index in range(at, stop):
        if _starts_fresh(text[index]):
            return index
    return stop


def _cut_anywhere(_: str, at: int) -> int:
    return at


_CUT_PERCENT = _before("%")
_CUT_AMPERSAND = _before("&")
_CUT_BACKSLASH = _before("\\")
_CUT_AT_OVERLONG = _at(_CUT_OVERLONG)
_CUT_AT_ESCAPES = _at(_CUT_ESCAPES)
_CUT_AT_CONTROLS = _at(_CUT_CONTROLS)
_CUT_AT_VERSION = _at(_CUT_VERSION)
_CUT_AT_WS = _at(_CUT_WS)


def _pass(
    text: str,
    step: Callable[[str], str],
    cut: Callable[[str, int], int],
    spend: Spend,
    chunk: int,
) -> str:
    """``step`` over ``text`` piece by piece, cut where ``cut`` says cutting changes
    nothing, each piece reported to ``spend`` before it is worked on (and what it
    grew by after)."""
    end = len(text)
    if end <= chunk:
        spend(end)
        out = step(text)
        if len(out) > end:
            spend(len(out) - end)
        return out
    pieces = []
    start = 0
    while start < end:
        stop = end if end - start <= chunk else cut(text, start + chunk)
        piece = text[start:stop]
        spend(len(piece))
        out = step(piece)
        if len(out) > len(piece):
            spend(len(out) - len(piece))
        pieces.append(out)
        start = stop
    return "".join(pieces)


def percent_decode(value: str, *, spend: Spend = _free, chunk: int = CHUNK_CHARS) -> str:
    """``value`` after steps 1 and 2 only (``%uXXXX``, overlong UTF-8, percent
    escapes, repeated): not entity-decoded, case kept. For rules that must tell
    how a character was written (``&#0000060`` from ``&lt;``), which the
    normalized text no longer shows. ``spend`` and ``chunk`` as for :func:`normalize`."""
    return _url_decode(value, spend, chunk)


def _url_decode(text: str, spend: Spend, chunk: int) -> str:
    for _ in range(MAX_DECODE_ROUNDS):
        if "%" not in text:
            break
        if "%u" in text or "%U" in text:
            text = _pass(text, _pct_u, _CUT_PERCENT, spend, chunk)
        if "%c" in text or "%C" in text or "%e0" in text or "%E0" in text:
            # Two passes, as two substitutions: the first can make the second's
            # escapes (%c0%a5 is "%"), so one cut rule cannot serve both at once.
            text = _pass(text, _overlong2s, _CUT_AT_OVERLONG, spend, chunk)
            text = _pass(text, _overlong3s, _CUT_AT_OVERLONG, spend, chunk)
        decoded = _pass(text, _unquote, _CUT_AT_ESCAPES, spend, chunk)
        if decoded == text:
            break
        text = decoded
    return text


def _strip_comments(text: str, spend: Spend) -> str:
    """``/* ... */`` comments become a space, each from ``/*`` to the first ``*/``
    after it (what the classic unrolled pattern matches). A ``/*`` without a
    closing ``*/`` after it ends the search: no later ``/*`` has one either (the
    pattern retried from each of them: quadratic time)."""
    pieces: list[str] = []
    position = 0
    while True:
        start = text.find("/*", position)
        if start < 0:
            break
        end = text.find("*/", start + 2)
        if end < 0:
            break
        spend(end + 2 - position)
        pieces += (text[position:start], " ")
        position = end + 2
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def normalize(
    value: str,
    *,
    spend: Spend = _free,
    max_chars: int | None = None,
    chunk: int = CHUNK_CHARS,
) -> str:
    """The canonical, lower-case form of ``value`` (see the module docstring).

    Args:
        value: the raw value.
        spend: told of the work before each piece of it (the request's
            :meth:`~pynomaly_security.detection.budget.Budget.spend`, which
            raises past the budget).
        max_chars: the longest normalized text; a longer one (expanded by NFKC
            or lower-casing) raises 413 ``value_too_long``.
        chunk: characters per piece (tests use small pieces).
    """
    text = _url_decode(value, spend, chunk)
    if "&" in text:
        for _ in range(2):
            unescaped = _pass(text, _unescape, _CUT_AMPERSAND, spend, chunk)
            if unescaped == text:
                break
            text = unescaped
    if not text.isascii():
        spend(len(text))
        if _LOOKALIKES.search(text):  # one character each: cut anywhere
            text = _pass(text, _lookalikes, _cut_anywhere, spend, chunk)
        # Most non-ASCII text is NFKC already (one C pass tells): only the rest is
        # worked on in pieces.
        if not unicodedata.is_normalized("NFKC", text):
            text = _pass(text, _nfkc, _nfkc_cut, spend, min(chunk, _NFKC_PIECE))
            if max_chars is not None and len(text) > max_chars:
                raise InspectionRefused(413, "value_too_long")
    if _CONTROL.search(text):
        text = _pass(text, _controls, _CUT_AT_CONTROLS, spend, chunk)
    spend(len(text))
    lowered = text.lower()  # one call (Greek final sigma depends on what follows)
    if len(lowered) > len(text):  # a few capitals lengthen (U+0130: i + dot)
        spend(len(lowered) - len(text))
        if max_chars is not None and len(lowered) > max_chars:
            raise InspectionRefused(413, "value_too_long")
    text = lowered
    if "&" in text:  # HTML5 names html.unescape only knows capitalized (&Tab;)
        text = text.replace("&tab;", "\t").replace("&newline;", "\n").replace("&colon;", ":")
    if "\\" in text:
        text = _pass(text, _js, _CUT_BACKSLASH, spend, chunk)
    if "/*" in text:
        if "/*!" in text:
            text = _pass(text, _version_comments, _CUT_AT_VERSION, spend, chunk)
        text = _strip_comments(text, spend)
    if not text.isascii() and _SEVEN_BIT_TAG.search(text):
        text = _SEVEN_BIT_TAG.sub(r"<\1>", text)
    return _pass(text, _blanks, _CUT_AT_WS, spend, chunk)
