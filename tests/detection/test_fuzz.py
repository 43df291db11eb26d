"""Property tests: inspection never raises, whatever the request."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pynomaly_security.detection import Inspector, RequestParts

INSPECTOR = Inspector(level=4)  # every rule active
CONTENT_TYPES = [
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=b",
    b"text/plain",
    b"",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(max_size=80),
    query=st.binary(max_size=200),
    body=st.binary(max_size=400),
    content_type=st.sampled_from(CONTENT_TYPES),
    cookie=st.binary(max_size=80),
    agent=st.binary(max_size=80),
)
def test_arbitrary_bytes_never_raise(
    path: str, query: bytes, body: bytes, content_type: bytes, cookie: bytes, agent: bytes
) -> None:
    """Random bytes anywhere give a verdict, never an exception."""
    headers = ((b"content-type", content_type), (b"cookie", cookie), (b"user-agent", agent))
    verdict = INSPECTOR.inspect(RequestParts("POST", path, query, headers, body))
    assert verdict.score == sum(f.score for f in verdict.findings)


@settings(max_examples=200, deadline=None)
@given(doc=json_values)
def test_arbitrary_json_never_raises(doc: object) -> None:
    """Any JSON document gives a verdict."""
    parts = RequestParts(
        "POST", "/", b"", ((b"content-type", b"application/json"),), json.dumps(doc).encode()
    )
    INSPECTOR.inspect(parts)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_arbitrary_text_values_never_raise(text: str) -> None:
    """Any Unicode text in a form field gives a verdict."""
    headers = ((b"content-type", b"application/x-www-form-urlencoded"),)
    INSPECTOR.inspect(RequestParts("POST", "/", b"", headers, b"f=" + text.encode()))
