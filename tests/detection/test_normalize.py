"""Normalization in metered pieces gives the text the whole value gives, in linear
time, and tells the budget of its work (issue 12: cost bounded per request)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynomaly_security.detection.normalize import (
    _COMPOSES_BACKWARD,
    CHUNK_CHARS,
    _strip_comments,
    _unquote,
    normalize,
    percent_decode,
)
from pynomaly_security.detection.types import InspectionRefused

# Pieces of the escapes and tricks each step undoes, so that random values are
# dense in the places where a cut could change the text.
TOKENS = [
    *("%25", "%u0041", "%U003C", "%c0%af", "%c0%a5", "%C1%9C", "%e0%80%af", "%C3%A9"),
    *("%C3", "%A9", "%80", "%41", "%", "%4", "e0", "8", "a"),
    *("&#60;", "&lt;", "&amp;", "&#x3c;", "&#00000060;", "&#123456789;", "&Tab;", "&colon;"),
    *("&", "#", ";", "0", "\\x41", "\\u003c", "\\", "/*", "*/", "/*!50000", "*", "/", "!1"),
    *(" ", "  ", "\t", "\x0b", "\xa0", "\u3000", "\n", "\x00", "\x00.", "\x01", "\x7f", "."),
    *("\u0301", "\u0316", "\ufdfa", "\uff9e", "\u1100", "\u1161", "\u11a8", "\uac00"),
    *("\u09c7", "\u09be", "\u2019", "\u02bc", "\u0130", "\u03a3", "A", "Z", "select", "<scr"),
]
values = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@settings(max_examples=500, deadline=None)
@given(value=values, chunk=st.integers(min_value=1, max_value=12))
def test_pieces_give_the_whole_values_text(value: str, chunk: int) -> None:
    """Cut anywhere a step allows, the normalized text is the same as uncut."""
    assert normalize(value, chunk=chunk) == normalize(value, chunk=len(value) + 1)


@settings(max_examples=300, deadline=None)
@given(value=st.lists(st.sampled_from([*TOKENS[:17], "é", "x", " "]), max_size=40).map("".join))
def test_escape_runs_decode_as_unquote(value: str) -> None:
    """Percent-escape runs decoded together read as ``urllib``'s ``unquote``."""
    assert _unquote(value) == unquote(value, errors="replace")


_CLASSIC_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")


@settings(max_examples=300, deadline=None)
@given(value=st.lists(st.sampled_from(["/*", "*/", "*", "/", "a", " ", "**/"]), max_size=30))
def test_comments_strip_as_the_classic_pattern(value: list[str]) -> None:
    """The linear comment removal matches what the unrolled C-comment pattern did."""
    text = "".join(value)
    assert _strip_comments(text, lambda _: None) == _CLASSIC_COMMENT.sub(" ", text)


def test_the_backward_composing_starters_are_unicodes() -> None:
    """The starters that compose with the character before them are read from the
    Unicode database of this Python (a new Unicode version fails here first)."""
    seconds = set()
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2 and unicodedata.combining(chr(int(parts[1], 16))) == 0:
                seconds.add(chr(int(parts[1], 16)))
    assert seconds == _COMPOSES_BACKWARD


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Each of these took quadratic time (seconds) in a single value.
        pytest.param("/*a" * 20_000, "/*a" * 20_000, id="unclosed-comments"),
        pytest.param("/*a" * 20_000 + "*/", " ", id="one-long-comment"),
        pytest.param("\x00" * 60_000 + "a", "a", id="nul-run-dropped"),
        pytest.param("%00" * 20_000 + ".php", "\x00.php", id="truncating-nul-run"),
        pytest.param("a" + "\u0301\u0316" * 30_000, None, id="combining-marks"),
        # int() refuses more than 4,300 digits: html.unescape raised (a 500).
        pytest.param("&#" + "0" * 5000 + "60;", "<", id="charref-leading-zeros"),
        pytest.param("&#" + "1" * 5000 + ";", "\ufffd", id="charref-huge"),
    ],
)
def test_adversarial_values_normalize_in_linear_time(value: str, expected: str | None) -> None:
    """Shapes that made a pattern retry from every position, or NFKC reorder a
    whole run of marks, are normalized in one pass (no timing asserted: they
    used to take seconds each)."""
    text = normalize(value)
    if expected is not None:
        assert text == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("\ufdfa" * 60_000, id="nfkc-expansion"),
        pytest.param("a" + "\u0301\u0316" * 100_000, id="combining-marks"),
        pytest.param("%u0041" * 100_000, id="iis-escapes"),
        pytest.param("%C3%A9x" * 100_000, id="utf8-escapes"),
        pytest.param("&#60;" * 100_000, id="entities"),
        pytest.param("\\x41" * 100_000, id="js-escapes"),
        pytest.param("/*!1*/a" * 100_000, id="version-comments"),
        pytest.param("a \t" * 100_000, id="blanks"),
    ],
)
def test_work_is_reported_in_pieces_before_it_is_done(value: str) -> None:
    """Every step reports its work piece by piece, before the piece is worked on
    (NFKC's pieces may grow 18 times); two are single C calls over the text (the
    NFKC quick check, lower-casing). So a budget that refuses part-way stops
    normalization there."""
    reported: list[int] = []
    normalize(value, spend=reported.append)
    assert sum(reported) >= len(value)  # a floor: several steps each report the text
    large = [units for units in reported if units > 18 * (CHUNK_CHARS + 64)]
    assert len(large) <= 2

    def over_budget(units: int) -> None:
        reported.append(units)
        if sum(reported) > 100_000:
            raise InspectionRefused(413, "inspection_budget_exceeded")

    reported.clear()
    with pytest.raises(InspectionRefused):
        normalize(value, spend=over_budget)


def test_expansion_past_max_chars_is_refused() -> None:
    """``max_chars`` holds the normalized text, which NFKC and lower-casing lengthen."""
    with pytest.raises(InspectionRefused) as refused:
        normalize("\ufdfa" * 1000, max_chars=10_000)
    assert (refused.value.status, refused.value.reason) == (413, "value_too_long")
    with pytest.raises(InspectionRefused):
        normalize("\u0130" * 600, max_chars=1000)  # İ lower-cases to i + a dot
    assert len(normalize("\ufdfa" * 500, max_chars=10_000)) == 9000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("\u00bcb\u00bebold\u00bc/b\u00be", "<b>bold</b>", id="seven-bit-tags"),
        pytest.param("\\xbcp\\xbe", "<p>", id="seven-bit-escaped"),
        pytest.param("\u00bc cup, \u00be cup", "1\u20444 cup, 3\u20444 cup", id="fractions"),
    ],
)
def test_tags_through_a_seven_bit_channel(value: str, expected: str) -> None:
    """U+00BC and U+00BE around a tag name are < and > once the high bit is stripped."""
    assert normalize(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("\\x3c\\x53cript\\x3e", "<script>", id="hex-escape-capital"),
        pytest.param("\\u003c\\u0053\\u0056\\u0047", "<svg", id="unicode-escape-capitals"),
        pytest.param("\\x3CSCRIPT", "<script", id="capitals-around-an-escape"),
        pytest.param("%5Cx3c%5Cx53cript", "<script", id="percent-encoded-escapes"),
    ],
)
def test_javascript_escapes_decode_to_lower_case(value: str, expected: str) -> None:
    """JavaScript escapes are decoded after case folding; what they decode to is
    folded too (``\\x53`` is ``s``), so ``\\x3c\\x53cript`` reads as the rules'
    lower-case ``<script``, not ``<Script``."""
    assert normalize(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("%26%23x003C%3B", "&#x003C;", id="escaped-reference"),
        pytest.param("%2526%2523060", "&#060", id="double-encoded"),
        pytest.param("%u0026#60", "&#60", id="iis-escape"),
        pytest.param("%c0%a6lt;", "&lt;", id="overlong-ampersand"),
        pytest.param("\\X3C &LT; %5Cu003C", "\\X3C &LT; \\u003C", id="escapes-and-case-kept"),
    ],
)
def test_percent_decode_stops_before_entities(value: str, expected: str) -> None:
    """``percent_decode`` undoes percent escapes as ``normalize`` does (its steps 1
    and 2) and nothing more: references, JavaScript escapes and case are kept, so a
    rule can tell how a character was written."""
    assert percent_decode(value) == expected
    assert normalize(percent_decode(value)) == normalize(value)


@settings(max_examples=300, deadline=None)
@given(value=values, chunk=st.integers(min_value=1, max_value=12))
def test_percent_decode_in_pieces_gives_the_whole_values_text(value: str, chunk: int) -> None:
    """Metered in pieces, ``percent_decode`` gives the text of the whole value."""
    assert percent_decode(value, chunk=chunk) == percent_decode(value, chunk=len(value) + 1)
