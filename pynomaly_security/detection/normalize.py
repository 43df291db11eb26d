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
6. JavaScript ``\\u0076``/``\\x3c`` escapes decoded;
7. SQL comment tricks: ``/**/`` becomes a space and MySQL version comments
   ``/*!50000select*/`` keep their content; every run of blanks (including
   vertical tab, form feed, NBSP) becomes one space; newlines are kept.

``+`` as space is the caller's business: it applies to query strings and
form bodies only, which :mod:`~pynomaly_security.detection.extract` decodes
with ``parse_qsl``. Backslashes are kept; path rules accept both slashes.

The patterns here are single character classes, fixed-length escapes and the
classic unrolled C-comment pattern (no two ways to match the same text), so
Python's ``re`` runs them in linear time; it is used instead of RE2 because
the ``re2`` wrapper's ``sub`` costs several microseconds per call.

References:
    OWASP evasion cheat sheets; CRS transformations ``t:urlDecodeUni``,
    ``t:htmlEntityDecode``, ``t:replaceComments``, ``t:compressWhitespace``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote

__all__ = ["MAX_DECODE_ROUNDS", "is_plain", "normalize"]

MAX_DECODE_ROUNDS = 3

_PLAIN = re.compile(r"[A-Za-z0-9_-]*")
_PCT_U = re.compile(r"(?i)%u([0-9a-f]{4})")
# Overlong 2- and 3-byte UTF-8 forms of ASCII, percent-encoded (%c0%ae = '.').
_OVERLONG2 = re.compile(r"(?i)%(c[01])%([89ab][0-9a-f])")
_OVERLONG3 = re.compile(r"(?i)%e0%(8[0-9a-f])%([89ab][0-9a-f])")
_SQL_VERSION_COMMENT = re.compile(r"/\*!\d*")
_SQL_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")
# Newlines are kept (CRLF injection rules need them); other blanks collapse.
_WS = re.compile(r"[ \t\x0b\x0c\xa0\u2000-\u200b\u3000]+")
# Slash look-alikes NFKC keeps: division/set-minus signs, IIS private-use forms.
_SLASHES = str.maketrans(
    {
        "\u2215": "/", "\u2044": "/", "\u2216": "\\", "\uefc8": "/", "\uf025": "/",
        # Curly quotes: some drivers and charsets fold them to ASCII quotes.
        "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'",
        # Quote look-alikes NFKC keeps, which best-fit charset conversions (and
        # some drivers) turn into ASCII quotes: modifier letters, primes.
        "\u02bc": "'", "\u02b9": "'", "\u02bb": "'", "\u02bd": "'", "\u02c8": "'",
        "\u2032": "'", "\u201b": "'", "\u201a": "'", "\u02ba": '"', "\u02ee": '"',
        "\u2033": '"', "\u201e": '"', "\u201f": '"', "\u301d": '"', "\u301e": '"',
    }
)
_JS_ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|x([0-9a-f]{2}))")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# A NUL that ends the value or a name (x.txt%00, x.php%00.jpg) truncates it in
# C-based file APIs: it is kept (as NUL) for the rules; elsewhere it is dropped.
_TRUNCATING_NUL = re.compile(r"\x00+(?=$|[.?&/\s])")


def is_plain(value: str) -> bool:
    """Letters, digits, ``_`` and ``-`` only: nothing to detect.

    Dots are not plain: ``java.lang.Runtime`` and ``a.php`` are signals."""
    return _PLAIN.fullmatch(value) is not None and "--" not in value


def _overlong2(match: object) -> str:
    hi, lo = match.group(1), match.group(2)  # type: ignore[attr-defined]
    return chr(((int(hi, 16) & 0x1F) << 6) | (int(lo, 16) & 0x3F))


def _overlong3(match: object) -> str:
    mid, lo = match.group(1), match.group(2)  # type: ignore[attr-defined]
    return chr(((int(mid, 16) & 0x3F) << 6) | (int(lo, 16) & 0x3F))


def _js_char(match: re.Match[str]) -> str:
    return chr(int(match.group(1) or match.group(2), 16))


def _url_decode(text: str) -> str:
    for _ in range(MAX_DECODE_ROUNDS):
        if "%" not in text:
            break
        if "%u" in text or "%U" in text:
            text = _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), text)
        if "%c" in text or "%C" in text or "%e0" in text or "%E0" in text:
            text = _OVERLONG2.sub(_overlong2, text)
            text = _OVERLONG3.sub(_overlong3, text)
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text


def normalize(value: str) -> str:
    """The canonical, lower-case form of ``value`` (see the module docstring)."""
    text = _url_decode(value)
    if "&" in text:
        for _ in range(2):
            unescaped = html.unescape(text)
            if unescaped == text:
                break
            text = unescaped
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.translate(_SLASHES))
    if _CONTROL.search(text):
        if "\x00" in text:
            text = _TRUNCATING_NUL.sub("\ue000", text)  # marked: survives the next line
        text = _CONTROL.sub("", text)  # <scr\0ipt>, ..\x01/ : controls split nothing
        if "\ue000" in text:
            text = text.replace("\ue000", "\x00")
    text = text.lower()
    if "&" in text:  # HTML5 names html.unescape only knows capitalized (&Tab;)
        text = text.replace("&tab;", "\t").replace("&newline;", "\n").replace("&colon;", ":")
    if "\\" in text:
        text = _JS_ESCAPE.sub(_js_char, text)
    if "/*" in text:
        if "/*!" in text:  # MySQL version comments: keep the content, drop the markers
            text = _SQL_VERSION_COMMENT.sub(" ", text).replace("*/", " ")
        text = _SQL_COMMENT.sub(" ", text)
    return _WS.sub(" ", text)
