"""Shell obfuscation (issue 12, item 3): commands spelled with quoting, escapes,
ANSI-C strings, variables or brace lists are read as a shell reads them.

``data/shell_obfuscation.txt`` holds 150 obfuscated payloads written for these
tests (none from the benchmark corpora); before the shell reading 72 of them
passed in every placement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security.detection import Inspector
from pynomaly_security.detection.rules._shell import MAX_SHELL_CHARS, shell_view

from ._helpers import form, json_body, query

DATA = Path(__file__).parent / "data" / "shell_obfuscation.txt"
PAYLOADS = [
    line for line in DATA.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
]


def test_the_payload_set_is_large_enough() -> None:
    assert len(PAYLOADS) >= 100
    assert len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize("place", [query, form, lambda v: json_body({"host": v})])
def test_every_obfuscated_payload_is_blocked(place: object) -> None:
    inspector = Inspector()
    missed = []
    for payload in PAYLOADS:
        verdict = inspector.inspect(place(payload))  # type: ignore[operator]
        if not verdict.blocked or "cmdi" not in verdict.families:
            missed.append(payload)
    assert missed == []


@pytest.mark.parametrize(
    ("value", "view"),
    [
        pytest.param(r";c\at /e\tc/pa\sswd", "; cat /etc/passwd", id="backslashes"),
        pytest.param(';i"d"', "; id", id="inner-double-quotes"),
        pytest.param("; c''a''t", "; cat", id="empty-single-quotes"),
        pytest.param(r";$'\x69\x64'", "; id", id="ansi-c-hex"),
        pytest.param(r";$'\151\144'", "; id", id="ansi-c-octal"),
        pytest.param("; a=i;b=d;$a$b", "; a=i ; b=d ; id", id="variables"),
        pytest.param("; p=wh;q=oami;${p}${q}", "; p=wh ; q=oami ; whoami", id="braced-variables"),
        pytest.param(r";{i\d,}", "; id", id="brace-list-empty-item"),
        pytest.param("{cat,/etc/passwd}", "cat /etc/passwd", id="brace-list"),
        pytest.param("x;c$@at /etc/hostname", "x ; cat /etc/hostname", id="positional-empty"),
        pytest.param("x;cat${ifs}/etc/issue", "x ; cat /etc/issue", id="ifs"),
        pytest.param("name'; w\\ho''ami", "name ; whoami", id="unbalanced-quote-closes-app-quote"),
        pytest.param('`h"ostname"`', "`hostname`", id="backticks-kept"),
        pytest.param("x\n  i''d", "x\n  id", id="indentation-kept"),
    ],
)
def test_shell_view(value: str, view: str) -> None:
    """Quote removal, escapes, ANSI-C, variables and brace lists as POSIX/bash do."""
    assert shell_view(value) == view


@pytest.mark.parametrize(
    "value",
    [
        "tom o'neil and sarah d'souza",
        "rock 'n' roll -- the 1950s",
        'he said "yes" and left',
        "/[a-z]{1,5}/",
        "plain words only",
        '{"a": 1, "b": 2}',
        "c\\at /etc/hostname",  # no separator: nothing runs after the application's command
        "```python\nprint('x')\n```",
    ],
)
def test_no_shell_reading_without_obfuscation(value: str) -> None:
    """Prose apostrophes, whole quoted words, regex repeats, JSON and values with
    no separator, substitution or brace list get no shell reading (it would
    only cost time)."""
    assert shell_view(value) is None


def test_shell_reading_is_bounded() -> None:
    """One call reads at most MAX_SHELL_CHARS characters (the engine reads a longer
    text window by window); a huge value of assignments and expansions does not
    grow the view beyond twice that."""
    value = "a=bbbbbbbb;$a$a$a$a;" * 10_000
    view = shell_view(value)
    assert view is not None
    assert len(view) <= 2 * MAX_SHELL_CHARS


def test_obfuscated_command_is_found_in_the_view_with_its_excerpt() -> None:
    verdict = Inspector().inspect(query("8.8.8.8;c\\at /e\\tc/pa\\sswd"))
    assert verdict.blocked
    excerpts = {f.excerpt for f in verdict.findings}
    assert any("cat" in e or "/etc/passwd" in e for e in excerpts), excerpts
