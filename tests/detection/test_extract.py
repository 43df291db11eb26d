"""Field extraction: every value is found, named, and parsing never raises."""

from __future__ import annotations

import json

import pytest

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection.extract import HeaderSelector, extract_fields
from pynomaly_security.detection.normalize import normalize
from pynomaly_security.detection.rules import ALL_RULES

SCORES = {rule.rule_id: rule.score for rule in ALL_RULES}


def _fields(parts: RequestParts) -> dict[str, str]:
    return dict(extract_fields(parts, HeaderSelector(["user-agent", "x-*"])))


def test_json_values_and_keys_at_any_depth() -> None:
    """JSON values get dotted paths; unusual keys are values too."""
    doc = {"user": {"comment": "hi", "tags": ["a", {"$ne": 1}]}}
    parts = RequestParts(
        "POST", "/", b"", ((b"content-type", b"application/json"),), json.dumps(doc).encode()
    )
    fields = extract_fields(parts, HeaderSelector([]))
    assert ("body.user.comment", "hi") in fields
    assert ("body.user.tags.0", "a") in fields
    assert ("body.user.tags.1.$ne", "$ne") in fields


def test_query_form_cookie_header_names() -> None:
    """Query, cookie and selected header values are named by where they came from."""
    parts = RequestParts(
        "GET",
        "/p",
        b"a=1+2&b=%3Cx%3E",
        (
            (b"cookie", b"sid=abc; theme=dark"),
            (b"user-agent", b"UA"),
            (b"x-trace", b"t"),
            (b"accept", b"*/*"),
        ),
    )
    fields = _fields(parts)
    assert fields["query.a"] == "1 2"  # '+' is a space in query strings
    assert fields["query.b"] == "<x>"
    assert fields["cookie.theme"] == "dark"
    assert fields["header.user-agent"] == "UA"
    assert fields["header.x-trace"] == "t"
    assert "header.accept" not in fields


def test_multipart_fields_and_file_names() -> None:
    """Multipart text parts and upload file names are inspected; binary file content is not."""
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="up"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\x00\x01\r\n--XyZ--\r\n"
    )
    parts = RequestParts(
        "POST", "/", b"", ((b"content-type", b"multipart/form-data; boundary=XyZ"),), body
    )
    fields = _fields(parts)
    assert fields["body.title"] == "hello"
    assert fields["body.up.filename"] == "a.png"
    assert "body.up" not in fields


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(b"application/json", b'{"a": [1, 2', id="truncated-json"),
        pytest.param(b"application/json", b"\xff\xfe\x00<script>", id="non-utf8-json"),
        pytest.param(b"multipart/form-data; boundary=", b"--\r\n\r\n", id="empty-boundary"),
        pytest.param(b"application/x-www-form-urlencoded", b"%%%=&&=%zz", id="bad-percent"),
    ],
)
def test_malformed_bodies_are_inspected_as_text(content_type: bytes, body: bytes) -> None:
    """Malformed bodies never raise; they are inspected as text."""
    parts = RequestParts("POST", "/", b"", ((b"content-type", content_type),), body)
    assert extract_fields(parts, HeaderSelector([]))
    Inspector().inspect(parts)


def test_deep_json_is_rejected_with_400() -> None:
    """JSON nested deeper than the bound is a 400, not a RecursionError in the app."""
    body = b"[" * 5000 + b"]" * 5000
    parts = RequestParts("POST", "/", b"", ((b"content-type", b"application/json"),), body)
    verdict = Inspector().inspect(parts)
    assert verdict.reject_status == 400
    assert verdict.reject_reason == "json_too_deep"
    shallow = RequestParts(
        "POST", "/", b"", ((b"content-type", b"application/json"),), b"[" * 10 + b"]" * 10
    )
    assert Inspector().inspect(shallow).reject_status is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("%253Cscript%253E", "<script>", id="double-percent"),
        pytest.param("%u003cimg%u003e", "<img>", id="iis-u-escape"),
        pytest.param("%c0%ae%c0%ae%c0%af", "../", id="overlong-utf8"),
        pytest.param("&lt;svg&#x3e;", "<svg>", id="html-entities"),
        pytest.param(
            "\uff1c\uff33\uff23\uff32\uff29\uff30\uff34\uff1e", "<script>", id="fullwidth"
        ),
        pytest.param("sel\x00ect", "select", id="null-byte"),
        pytest.param("union/**/select", "union select", id="sql-comment"),
        pytest.param("/*!50000union*/", " union ", id="mysql-version-comment"),
        pytest.param("a\t\x0b b", "a b", id="whitespace"),
    ],
)
def test_normalization(raw: str, expected: str) -> None:
    """Each evasion is undone once, before matching."""
    assert normalize(raw) == expected


def test_finding_explains_without_the_value() -> None:
    """A finding names family, rule, field and score, with a short redacted excerpt."""
    secret = "4111111111111111"
    value = f"card {secret} and then ' OR '1'='1 plus a long tail " + "x" * 500
    verdict = Inspector().inspect(RequestParts("GET", "/", f"note={value}".encode()))
    assert verdict.blocked
    for finding in verdict.findings:
        assert finding.field == "query.note"
        assert finding.family == "sqli"
        assert finding.score == SCORES[finding.rule_id]  # a query field weighs nothing down
        assert len(finding.excerpt) <= 40  # a bound: the excerpt is cut at 40 characters
        assert secret not in finding.excerpt


def test_every_header_an_app_reads_with_star() -> None:
    """'*' (the default) inspects every header an app may declare with Header(), standard
    or custom, but not framing, connection or trace-context headers, and never a
    credential header, even when named."""
    selector = HeaderSelector(["*"])
    assert selector("test") and selector("x-custom")
    assert selector("accept-language") and selector("sec-ch-ua") and selector("origin")
    for name in ("host", "content-length", "connection", "accept-encoding", "baggage"):
        assert not selector(name)
    assert not selector("authorization") and not HeaderSelector(["authorization"])("authorization")
    assert HeaderSelector(["baggage"])("baggage")
    parts = RequestParts("GET", "/", b"", ((b"test", b"java.lang.Runtime"),))
    assert Inspector().inspect(parts).blocked
    assert not Inspector(inspect_headers=["user-agent", "x-*"]).inspect(parts).findings


def test_upload_names_and_underscore_headers() -> None:
    """Script upload names are caught in multipart file names and X_Filename headers."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="shell.php5"\r\n'
        b"Content-Type: image/gif\r\n\r\nGIF89a\r\n--b--\r\n"
    )
    content_type = ((b"content-type", b"multipart/form-data; boundary=b"),)
    verdict = Inspector().inspect(RequestParts("POST", "/", b"", content_type, body))
    assert verdict.blocked and "code-script-upload" in verdict.rules
    assert {f.field for f in verdict.findings} == {"body.f.filename"}
    header = RequestParts("PUT", "/", b"", ((b"x_filename", b"avatar.phtml"),))
    assert Inspector().inspect(header).blocked


def test_plain_values_still_get_encoded_payload_rules() -> None:
    """Long alphanumeric values skip the full scan but not the base64 gadget rules."""
    gadget = "cHJvdG90eXBlY2xvbmVmYWN0b3J5"  # base64("prototypeclonefactory")
    verdict = Inspector().inspect(RequestParts("GET", "/", f"t={gadget}".encode()))
    assert verdict.blocked
    assert not Inspector().inspect(RequestParts("GET", "/", b"t=dGhpcyBpcyBmaW5l")).findings
