"""InputSanitizer: every level with and without HTML, every public method and option."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from starlette.testclient import TestClient

from pynomaly_security import ConfigurationError, InputSanitizer, SecuritySettings
from pynomaly_security.sanitize import SanitizedStr
from pynomaly_security.settings import SanitizationLevel

MARKUP = (
    '<b>bold</b> <p>para</p> <a href="https://x.test" onclick="go()">link</a> '
    '<a href="javascript:go()">js</a> <table><tr><td>cell</td></tr></table>'
    "<script>alert(1)</script>"
)
LINK = '<a href="https://x.test" rel="noopener noreferrer">link</a>'
TAG = re.compile(r"</?[A-Za-z]")  # an element's start or end tag
TABLE = "<table><tbody><tr><td>cell</td></tr></tbody></table>"


@pytest.mark.parametrize(
    ("level", "allow_html", "expected"),
    [
        # -- no HTML: text only, whatever the level ------------------------------------
        pytest.param("strict", False, "bold para link js cell", id="strict-text"),
        pytest.param("moderate", False, "bold para link js cell", id="moderate-text"),
        pytest.param("permissive", False, "bold para link js cell", id="permissive-text"),
        # -- HTML: each level's allow-list; handlers, script URLs and scripts go ----------
        pytest.param("strict", True, "<b>bold</b> para link js cell", id="strict-html"),
        pytest.param(
            "moderate",
            True,
            f'<b>bold</b> <p>para</p> {LINK} <a rel="noopener noreferrer">js</a> cell',
            id="moderate-html",
        ),
        pytest.param(
            "permissive",
            True,
            f'<b>bold</b> <p>para</p> {LINK} <a rel="noopener noreferrer">js</a> {TABLE}',
            id="permissive-html",
        ),
    ],
)
def test_levels_keep_their_allow_list(level: str, allow_html: bool, expected: str) -> None:
    """Each level keeps exactly its tags; nothing active survives any of them."""
    assert InputSanitizer(level, allow_html=allow_html).sanitize(MARKUP) == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param("strict", "xyz\tq\nw AB fi", id="strict"),
        pytest.param("moderate", "xyz\tq\nw \uff21\uff22 \ufb01", id="moderate"),
        # nh3 drops NUL itself; the permissive level removes no other control character.
        pytest.param("permissive", "xy\x07z\x7f\tq\nw \uff21\uff22 \ufb01", id="permissive"),
    ],
)
def test_control_characters_and_unicode_forms(level: str, expected: str) -> None:
    """Strict and moderate drop control characters but tab and newline; only strict
    folds compatibility forms (full-width letters, ligatures) with NFKC."""
    text = "x\x00y\x07z\x7f\tq\nw \uff21\uff22 \ufb01"
    assert InputSanitizer(level).sanitize(text) == expected


def test_plain_text_stays_plain() -> None:
    """Without HTML the result is text, not markup: characters nh3 escapes come back
    as typed, and an entity written by the user is read as its character."""
    sanitizer = InputSanitizer()
    assert sanitizer.sanitize("a < b & c > \"d\" 'e'") == "a < b & c > \"d\" 'e'"
    assert sanitizer.sanitize("AT&amp;T &lt;3") == "AT&T <3"
    assert InputSanitizer(allow_html=True).sanitize("a < b & c") == "a &lt; b &amp; c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("&lt;script&gt;alert(1)&lt;/script&gt;", "", id="entity-script"),
        pytest.param("&lt;img src=x onerror=go()&gt;hi", "hi", id="entity-handler"),
        # Decoded once, this is the text "&lt;b&gt;x": no tag, so it stays.
        pytest.param("&amp;lt;b&amp;gt;x", "&lt;b&gt;x", id="double-entities"),
        pytest.param("&#60;a href=x&#62;y&#60;/a&#62;", "y", id="numeric-entities"),
        # Each round peels one "<" of nested brackets; past the last round none is kept.
        pytest.param("<<<<b>b>b>b>x", "x", id="nested-brackets"),
        pytest.param("<<<<<<b>b>b>b>b>b>x", "b>b>x", id="nested-past-the-rounds"),
    ],
)
def test_entities_never_come_out_as_tags(text: str, expected: str) -> None:
    """A tag written with entities is cleaned like a tag (nh3 decodes entities, and
    the plain result is unescaped): text promised to hold no tag never holds one."""
    assert InputSanitizer().sanitize(text) == expected


def test_max_length_cuts_before_cleaning() -> None:
    """The input is cut first, so a tag cut in half is still removed."""
    assert InputSanitizer(max_length=12).sanitize("hello <b>world</b>") == "hello wor"
    assert InputSanitizer(max_length=5).sanitize("abcdefgh") == "abcde"
    assert InputSanitizer().sanitize("x" * 10_000) == "x" * 10_000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"level": "lenient"},
            "sanitization level must be one of strict, moderate, permissive, got 'lenient'",
            id="level",
        ),
        pytest.param({"max_length": 0}, "max_length must be >= 1, got 0", id="max-length"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        InputSanitizer(**options)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_level_accepts_the_enum_and_its_value() -> None:
    assert InputSanitizer(SanitizationLevel.MODERATE).level is SanitizationLevel.MODERATE
    assert InputSanitizer("permissive").level is SanitizationLevel.PERMISSIVE
    assert InputSanitizer().level is SanitizationLevel.STRICT


def test_sanitize_data_cleans_every_string_keys_included() -> None:
    """Strings at any depth, dict keys among them, are sanitized; lists and tuples
    keep their type; other values pass unchanged."""
    data = {
        "<b>name</b>": "<i>x</i>",
        "items": ["<script>go()</script>ok", ("<u>t</u>", 3)],
        "n": 7,
        "none": None,
        5: "<p>five</p>",
    }
    assert InputSanitizer().sanitize_data(data) == {
        "name": "x",
        "items": ["ok", ("t", 3)],
        "n": 7,
        "none": None,
        5: "five",
    }


def test_sanitize_data_refuses_deep_nesting() -> None:
    """Deeper than ``max_depth`` is a ValueError, not a RecursionError."""
    doc: object = "x"
    for _ in range(40):
        doc = [doc]
    too_deep = r"^value nested too deeply to sanitize \(at \$(\[0\])+\)$"
    with pytest.raises(ValueError, match=too_deep):
        InputSanitizer().sanitize_data(doc)
    assert InputSanitizer().sanitize_data([["<b>x</b>"]], max_depth=3) == [["x"]]
    with pytest.raises(ValueError, match=too_deep):
        InputSanitizer().sanitize_data([["x"]], max_depth=2)


def test_would_change() -> None:
    sanitizer = InputSanitizer(allow_html=True)
    assert sanitizer.would_change("<b>fine</b>") is False
    assert sanitizer.would_change("<img src=x onerror=go()>") is True
    assert InputSanitizer().would_change("plain words") is False


def test_from_settings_reads_level_and_allow_html() -> None:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        sanitization_level="moderate",
        allow_html=True,
    )
    sanitizer = InputSanitizer.from_settings(settings)
    assert (sanitizer.level, sanitizer.allow_html, sanitizer.max_length) == (
        SanitizationLevel.MODERATE,
        True,
        None,
    )
    assert sanitizer.sanitize("<p>x</p><script>y</script>") == "<p>x</p>"


def test_validator_and_sanitized_str_in_a_model() -> None:
    """``Annotated[str, sanitizer.validator]`` and :data:`SanitizedStr` clean a
    field when the model is validated; the type check still runs first."""
    moderate = InputSanitizer("moderate", allow_html=True)

    class Comment(BaseModel):
        title: SanitizedStr
        body: Annotated[str, moderate.validator]

    comment = Comment(title="<b>Hi</b>", body="<p>ok</p><img src=x onerror=go()>")
    assert (comment.title, comment.body) == ("Hi", "<p>ok</p>")
    with pytest.raises(ValidationError):
        Comment(title=3, body="x")  # type: ignore[arg-type]


class Note(BaseModel):
    text: SanitizedStr


def test_sanitized_str_on_a_fastapi_endpoint() -> None:
    """Through a real app the endpoint receives the cleaned value."""
    app = FastAPI()

    @app.post("/notes")
    async def notes(note: Note) -> dict[str, str]:
        return {"text": note.text}

    with TestClient(app) as client:
        answer = client.post("/notes", json={"text": "<script>x()</script>hello <b>you</b>"})
    assert answer.status_code == 200
    assert answer.json() == {"text": "hello you"}


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet="<>/!?&#;ltgampbisx0369 =\"'", max_size=80))
def test_text_only_output_never_holds_a_tag(text: str) -> None:
    """Whatever the mix of brackets and entities, text-only output holds no element's
    tag (a lone ``</`` or ``<!`` at the end is text to an HTML parser, and stays)."""
    for level in SanitizationLevel:
        assert TAG.search(InputSanitizer(level).sanitize(text)) is None
