"""Differential test: the inspector reads what the framework reads.

A FastAPI app echoes every value it parsed (query, cookies, form and multipart
fields and file names, JSON strings and keys, path parameters); the same
request, as bytes, goes to :func:`extract_fields`. Every value the app saw must
be among the values inspected, for many request shapes where two readers could
differ (``+``, ``%00``, repeated names, ``;``, quoting, ``filename*=``,
boundaries, charsets, duplicate JSON keys, UTF-16 JSON, content-type spelling,
and the raw text FastAPI hands a ``str`` body of any type it does not
json-decode: ``text/plain``, ``application/x-json``, ``octet-stream``, none).
The app is a real FastAPI app driven over raw ASGI so that every byte is the
test's choice (an HTTP client would normalize some of them).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import unquote

import pytest
from fastapi import Body, FastAPI, Request
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive, Scope, Send

from pynomaly_security.detection import RequestParts
from pynomaly_security.detection.extract import (
    PLAIN_KEY_MIN,
    HeaderSelector,
    extract_fields,
)
from pynomaly_security.detection.normalize import is_plain


def _strings(doc: Any) -> list[str]:
    """Every string of a parsed JSON document: values and keys."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (k, *_strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return []


def _echo_app() -> FastAPI:
    app = FastAPI()

    def common(request: Request) -> list[str]:
        seen = [s for pair in request.query_params.multi_items() for s in pair]
        seen += [s for pair in request.cookies.items() for s in pair]
        seen.append(request.headers.get("user-agent", ""))
        return seen

    @app.post("/json")
    async def json_body(request: Request, payload: Any = Body(None)) -> list[str]:  # noqa: B008
        return common(request) + _strings(payload)

    @app.post("/form")
    async def form_body(request: Request) -> list[str]:
        seen = common(request)
        async with request.form() as form:
            for key, value in form.multi_items():
                seen.append(key)
                if isinstance(value, str):
                    seen.append(value)
                    continue
                assert isinstance(value, UploadFile)
                seen.append(value.filename or "")
                if (value.content_type or "").startswith("text/"):
                    seen.append((await value.read()).decode("utf-8", "replace"))
        return seen

    @app.post("/text")
    async def text_body(request: Request, body: Annotated[str, Body()]) -> list[str]:
        return [*common(request), body]

    @app.get("/files/{name:path}")
    async def files(request: Request, name: str) -> list[str]:
        return [*common(request), name]

    return app


async def _call(
    app: FastAPI,
    method: str,
    raw_path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> tuple[int, Any]:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1"), encoding="latin-1"),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }
    sent = False
    out: list[Message] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        out.append(message)

    receive_: Receive = receive
    send_: Send = send
    await app(scope, receive_, send_)
    status = out[0]["status"]
    payload = b"".join(m.get("body", b"") for m in out[1:])
    return status, json.loads(payload) if status == 200 else payload


def _worth(value: str) -> bool:
    """Names the inspector skips on purpose: short plain identifiers (``id``)."""
    return bool(value) and not (len(value) < PLAIN_KEY_MIN and is_plain(value))


MP = b"multipart/form-data; boundary=XyZ"


def _mp(*parts: bytes, boundary: bytes = b"XyZ") -> bytes:
    return (
        b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
        + b"--"
        + boundary
        + b"--\r\n"
    )


SHAPES: list[tuple[str, str, bytes, bytes, list[tuple[bytes, bytes]], bytes]] = [
    ("query-plus-and-nul", "/json", b"/json", b"a=1+2&b=%00<x>&a=%2B3", [], b""),
    ("query-semicolon", "/json", b"/json", b"a=1;b=<svg/onload=x>&c", [], b""),
    ("query-raw-utf8", "/json", b"/json", "q=é<\u017fcript>&%3Cname%3E=v".encode(), [], b""),
    ("query-bad-percent", "/json", b"/json", b"q=%zz%E2%80&=x&&=", [], b""),
    ("cookie-quoting", "/json", b"/json", b"", [(b"cookie", b'a=1; b="x\\073y\\074"; c=<i>')], b""),
    ("cookie-repeated", "/json", b"/json", b"", [(b"cookie", b"a=1; a=<b>; =bare; k")], b""),
    (
        "cookie-two-headers",
        "/json",
        b"/json",
        b"",
        [(b"cookie", b"a=1"), (b"cookie", b"z=<q>")],
        b"",
    ),
    ("cookie-latin1", "/json", b"/json", b"", [(b"cookie", "a=é<x>".encode())], b""),
    ("header-latin1", "/json", b"/json", b"", [(b"user-agent", "ua é<x>".encode())], b""),
    (
        "json-duplicate-keys",
        "/json",
        b"/json",
        b"",
        [(b"content-type", b"application/json")],
        b'{"q": "<a>", "q": "ok", "n": {"q": 1, "q": "<b>"}}',
    ),
    (
        "json-escapes",
        "/json",
        b"/json",
        b"",
        [(b"content-type", b"application/json")],
        b'{"q": "\\u003cscript\\u003e", "\\u0041long key!": ["x", {"y": "z"}]}',
    ),
    (
        "json-utf16",
        "/json",
        b"/json",
        b"",
        [(b"content-type", b"application/json")],
        '{"q": "<utf16>"}'.encode("utf-16"),
    ),
    ("json-no-content-type", "/json", b"/json", b"", [], b'["<nocontenttype>", "b"]'),
    ("json-scalar-string", "/json", b"/json", b"", [], b'"<scalar>"'),
    (
        "json-odd-content-type",
        "/json",
        b"/json",
        b"",
        [(b"content-type", b"Application/Vnd.Api+JSON ; charset=latin-1")],
        b'{"a": "<b>"}',
    ),
    (
        "form-repeated",
        "/form",
        b"/form",
        b"",
        [(b"content-type", b"application/x-www-form-urlencoded")],
        b"a=1&a=%3Cx%3E+y&b=%00&&=v&c",
    ),
    (
        "form-semicolon",
        "/form",
        b"/form",
        b"",
        [(b"content-type", b"application/x-www-form-urlencoded")],
        b"a=1;b=<c>&d=e;f",
    ),
    (
        "form-raw-utf8",
        "/form",
        b"/form",
        b"",
        [(b"content-type", b"application/x-www-form-urlencoded; charset=utf-16")],
        "a=é<x>&é=1".encode(),
    ),
    (
        "multipart-quoting",
        "/form",
        b"/form",
        b"",
        [(b"content-type", MP)],
        _mp(
            b'Content-Disposition: form-data; name="a\\"b"\r\n\r\nv1',
            b"Content-Disposition: form-data; name=plain\r\n\r\n<v2>",
            b'Content-Disposition: form-data; name="f"; filename="x\\".txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n<file>",
        ),
    ),
    (
        "multipart-filename-star",
        "/form",
        b"/form",
        b"",
        [(b"content-type", MP)],
        _mp(
            b"Content-Disposition: form-data; name=\"f\"; "
            b"filename*=utf-8''%3Cs%3E.txt\r\n\r\n<body>",
        ),
    ),
    (
        "multipart-quoted-boundary",
        "/form",
        b"/form",
        b"",
        [(b"content-type", b'multipart/form-data; boundary="a b:c"')],
        _mp(
            b'Content-Disposition: form-data; name="q"\r\n\r\n<qb>',
            boundary=b"a b:c",
        ),
    ),
    (
        "multipart-charset",
        "/form",
        b"/form",
        b"",
        [(b"content-type", b"multipart/form-data; charset=latin-1; boundary=XyZ")],
        _mp(
            'Content-Disposition: form-data; name="é"\r\n\r\nvé<x>'.encode("latin-1"),
        ),
    ),
    (
        "multipart-bad-utf8",
        "/form",
        b"/form",
        b"",
        [(b"content-type", MP)],
        _mp(
            b'Content-Disposition: form-data; name="q"\r\n\r\n\xff<x>\xfe',
        ),
    ),
    (
        "multipart-extra-headers",
        "/form",
        b"/form",
        b"",
        [(b"content-type", MP)],
        _mp(
            b"Content-Type: text/html\r\n"
            b'Content-Disposition: form-data; name="q"\r\nX-Other: 1\r\n\r\n<h>',
        ),
    ),
    ("path-dotdot-semicolon", "/files", b"/files/a/..;/admin%2F%2e%2e/<x>", b"", [], b""),
    # A str body gets the raw text of every type FastAPI does not json-decode.
    ("str-text-plain", "/text", b"/text", b"", [(b"content-type", b"text/plain")], b"a <t> b"),
    (
        "str-x-json",
        "/text",
        b"/text",
        b"",
        [(b"content-type", b"application/x-json")],
        b'{"a": "<b>", "c": ["d", "e"]}',
    ),
    (
        "str-jsonx",
        "/text",
        b"/text",
        b"",
        [(b"content-type", b"application/jsonx")],
        b'["<img src=x", " onerror=y>"]',
    ),
    (
        "str-two-types-in-one",
        "/text",
        b"/text",
        b"",
        [(b"content-type", b"application/json, text/plain")],
        b'{"a": "<b>"}',
    ),
    ("str-no-type-json", "/text", b"/text", b"", [], b'{"q": "<x>", "r": 1}'),
    ("str-no-type-text", "/text", b"/text", b"", [], b"see <x> here"),
    ("str-empty-type", "/text", b"/text", b"", [(b"content-type", b"")], b'{"q": "<x>"}'),
    (
        "str-octet-stream",
        "/text",
        b"/text",
        b"",
        [(b"content-type", b"application/octet-stream")],
        b"<bin>\x01\x02",
    ),
    ("str-unknown-type", "/text", b"/text", b"", [(b"content-type", b"foo/bar")], b"<u> v"),
    (
        "str-xml",
        "/text",
        b"/text",
        b"",
        [(b"content-type", b"application/xml")],
        b"<a>&lt;b&gt;</a>",
    ),
]


@pytest.mark.parametrize(
    ("method_path", "raw_path", "query", "headers", "body"),
    [pytest.param(s[1], s[2], s[3], s[4], s[5], id=s[0]) for s in SHAPES],
)
@pytest.mark.anyio
async def test_every_value_the_app_sees_is_inspected(
    method_path: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    app = _echo_app()
    method = "GET" if method_path == "/files" else "POST"
    if body:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    status, seen = await _call(app, method, raw_path, query, headers, body)
    assert status == 200, seen
    parts = RequestParts(method, raw_path.decode("latin-1"), query, tuple(headers), body)
    inspected = {value for _, value in extract_fields(parts, HeaderSelector(["user-agent"]))}
    path = unquote(raw_path.decode("latin-1"), encoding="latin-1")
    missing = [
        value
        for value in seen
        if _worth(value) and value not in inspected and not (method == "GET" and value in path)
    ]
    assert not missing, (missing, sorted(inspected))
