"""Input FastAPI cannot echo never becomes a 500.

FastAPI answers a request it cannot validate with a 422 that echoes the input;
a lone surrogate (JSON ``"\\ud800"``, a UTF-7 multipart part), ``NaN`` in an
``int`` field or a huge value made its own handler raise while encoding that
answer. The inspector refuses JSON lone surrogates before the app (400
``json_lone_surrogate``, audited), and ``setup_security_middleware`` installs a
handler that renders every validation error safely and bounded
(:mod:`pynomaly_security.validation`), for whatever still reaches the app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from pynomaly_security import SecuritySettings, setup_security_middleware
from tests._example import running_example

KEY = "test-admin-key-0123456789abcdef"
JSON = {"content-type": "application/json"}
UTF7 = "multipart/form-data; charset=utf-7; boundary=B"


def _utf7_part(value: bytes) -> bytes:
    return b'--B\r\nContent-Disposition: form-data; name="n"\r\n\r\n' + value + b"\r\n--B--\r\n"


class Counter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    name: str = Field("", max_length=3)


def _app(*, inspection: bool) -> FastAPI:
    app = FastAPI()
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        development_mode=True,
        enable_audit_logging=False,
    )
    setup_security_middleware(app, settings=settings, enable_input_inspection=inspection)

    @app.post("/counter")
    async def counter(body: Counter) -> Counter:
        return body

    @app.post("/form")
    async def form(n: Annotated[int, Form()]) -> int:
        return n

    @app.get("/query")
    async def query(n: int) -> int:
        return n

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=False, client=("198.51.100.23", 40000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# Each fails validation, and FastAPI's 422 raised echoing it (or was unbounded).
BAD_INPUT = [
    pytest.param(
        "POST",
        "/counter",
        b'{"n": 1, "name": "' + b"\\ud800" * 9 + b'"}',
        JSON,
        (400, 422),
        id="json-lone-surrogate",
    ),
    pytest.param(
        "POST", "/counter", b'{"n": "\\udfff"}', JSON, (400, 422), id="json-surrogate-in-int"
    ),
    pytest.param(
        "POST",
        "/counter",
        b'{"n": 1, "\\ud800": 2}',
        JSON,
        (400, 422),
        id="json-surrogate-in-extra-key",
    ),
    pytest.param(
        "POST",
        "/counter",
        '{"n": "\ud83d"}'.encode("utf-16", "surrogatepass"),
        JSON,
        (400, 422),
        id="utf16-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/form",
        _utf7_part(b"+2AA-"),
        {"content-type": UTF7},
        (400, 422),
        id="utf7-multipart",
    ),
    pytest.param(
        "POST", "/counter", b'{"n": ' + b"9" * 5000 + b"}", JSON, (400, 400), id="int-5000-digits"
    ),
    pytest.param(
        "POST", "/counter", b'{"n": "' + b"x" * 100_000 + b'"}', JSON, (422, 422), id="long-input"
    ),
    pytest.param("GET", "/query?n=" + "9" * 5000, b"", {}, (422, 422), id="query-5000-digits"),
    pytest.param("GET", "/query?n=%ED%A0%80", b"", {}, (422, 422), id="query-encoded-surrogate"),
]


@pytest.mark.parametrize("inspection", [True, False], ids=["inspected", "not-inspected"])
@pytest.mark.parametrize(("method", "url", "body", "headers", "expected"), BAD_INPUT)
@pytest.mark.anyio
async def test_bad_input_is_a_clear_4xx_never_a_500(
    inspection: bool,
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    expected: tuple[int, int],
) -> None:
    """With or without inspection in front, every such request gets a 4xx whose body
    is valid, bounded JSON: inspection's 400 for what it cannot read, FastAPI's 422
    for what it validates (``expected``: with inspection, without)."""
    async with _client(_app(inspection=inspection)) as client:
        response = await client.request(method, url, content=body, headers=headers)
    assert response.status_code == expected[0 if inspection else 1], response.text
    assert len(response.content) < 8192
    answer = response.json()
    if response.status_code == 422:
        assert isinstance(answer["detail"], list) and answer["detail"]
        assert {"type", "loc", "msg"} <= set(answer["detail"][0])


@pytest.mark.anyio
async def test_nan_in_an_int_field_is_a_422_when_not_inspected() -> None:
    """``NaN`` for an ``int`` (the inspector refuses it first when it runs): FastAPI's
    422 echoed it and could not encode it; the safe handler renders it as text."""
    async with _client(_app(inspection=False)) as client:
        response = await client.post("/counter", content=b'{"n": NaN}', headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "n"] and error["input"] == "nan"


@pytest.fixture
async def example(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_example(tmp_path, KEY) as application:
        yield application


@pytest.mark.anyio
async def test_json_lone_surrogates_are_refused_and_audited(example: FastAPI) -> None:
    """On the example app, a lone surrogate in a JSON login or item is a 400
    ``json_lone_surrogate`` with the request id, recorded in the audit trail."""
    async with _client(example) as client:
        for path, body in (
            ("/login", b'{"username": "\\ud800", "password": "x"}'),
            ("/items", b'{"name": "a\\udc00b", "price": 1}'),
        ):
            response = await client.post(path, content=body, headers=JSON)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "json_lone_surrogate"
            assert response.json()["request_id"] == response.headers["x-request-id"]
        paired = await client.post("/items", json={"name": "lamp \U0001f4a1", "price": 1})
        assert paired.status_code == 201
    audit = example.state.pynomaly_security.audit_logger
    records = await audit.query(event_type="request_refused", limit=50)
    assert [r["details"]["reason"] for r in records] == ["json_lone_surrogate"] * 2


@pytest.mark.anyio
async def test_an_app_handler_is_kept() -> None:
    """An app that registered its own validation handler keeps it."""
    app = FastAPI()

    async def mine(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"mine": True}, status_code=400)

    app.add_exception_handler(RequestValidationError, mine)
    setup_security_middleware(
        app,
        settings=SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            development_mode=True,
            enable_audit_logging=False,
        ),
    )

    @app.get("/q")
    async def q(n: int) -> Any:
        return n

    async with _client(app) as client:
        response = await client.get("/q", params={"n": "x"})
    assert (response.status_code, json.loads(response.content)) == (400, {"mine": True})
