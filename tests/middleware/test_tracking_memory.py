"""The tracking layer's memory of plain requests (``UserTrackingMiddleware._plain``)
never keeps a request carrying a credential (it would keep the secret), and a
request remembered over one HTTP version never stands for the same request over
another (an HTTP/2 request may carry a body no header announces)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from pynomaly_security import (
    ConfigurationError,
    SecuritySettings,
    load_settings,
    setup_security_middleware,
)
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.tracking import UserTrackingMiddleware

SECRET = "s3cr3t-token-value-0123456789"


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"body": (await request.body()).decode()})


def _inner() -> Starlette:
    return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])


def _layer(app: FastAPI) -> UserTrackingMiddleware:
    layer: object = app.middleware_stack
    while not isinstance(layer, UserTrackingMiddleware):
        layer = getattr(layer, "app")  # noqa: B009  # down the built stack
    return layer


def _kept(layer: UserTrackingMiddleware) -> set[tuple[object, ...]]:
    plain = layer._plain
    assert plain is not None
    return plain


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(("Authorization", f"Bearer {SECRET}"), id="authorization"),
        pytest.param(("Proxy-Authorization", f"Basic {SECRET}"), id="proxy-authorization"),
        pytest.param(("Cookie", f"session={SECRET}"), id="cookie"),
        pytest.param(("X-API-Key", SECRET), id="x-api-key"),
        pytest.param(("X-Tenant-Key", SECRET), id="settings-api-key-header"),
    ],
)
@pytest.mark.anyio
async def test_a_request_with_credentials_is_never_remembered(
    make_client: Callable[[ASGIApp], httpx.AsyncClient], credential: tuple[str, str]
) -> None:
    """A plain request is remembered; the same request with a token, a cookie, an
    API key or a header the settings name as an API-key header never is, however
    often it comes, and its secret is nowhere in the memory."""
    app = FastAPI()
    setup_security_middleware(
        app,
        settings=SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            development_mode=True,
            enable_audit_logging=False,
            api_key_headers=["X-Tenant-Key"],
        ),
    )
    app.add_api_route("/echo", echo, methods=["GET"])
    async with make_client(app) as client:
        for _ in range(3):
            assert (await client.get("/echo", headers={"X-Trace": "t1"})).status_code == 200
        layer = _layer(app)
        kept = set(_kept(layer))
        assert len(kept) == 1
        for _ in range(3):
            answer = await client.get(
                "/echo", headers={"X-Trace": "t1", credential[0]: credential[1]}
            )
            assert answer.status_code == 200
    assert _kept(layer) == kept
    assert SECRET not in repr(_kept(layer))


@pytest.mark.anyio
async def test_the_memory_key_holds_the_http_version() -> None:
    """A bodiless GET remembered over HTTP/1.1 does not let the same method, path
    and headers through over HTTP/2 uninspected, where a body needs no header."""
    tracking = UserTrackingMiddleware(InputInspectionMiddleware(_inner()))
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]

    async def call(http_version: str, body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": http_version,
            "method": "GET",
            "scheme": "http",
            "path": "/echo",
            "raw_path": b"/echo",
            "root_path": "",
            "query_string": b"",
            "headers": list(headers),
            "client": ("203.0.113.7", 50000),
            "server": ("testserver", 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await tracking(scope, receive, send)
        return int(sent[0]["status"])

    for _ in range(3):  # inspected, found clean, then remembered
        assert await call("1.1", b"") == 200
    assert tracking._plain
    attack = b'{"q": "<script>alert(document.cookie)</script>"}'
    assert await call("2", attack) == 403
    assert await call("1.1", b"") == 200


def test_api_key_headers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYNOMALY_SECURITY__API_KEY_HEADERS takes a comma-separated list of header
    names (stored lowercase); anything but a header name is a configuration error."""
    monkeypatch.setenv("PYNOMALY_SECURITY__API_KEY_HEADERS", "X-Tenant-Key, X-Partner-Token")
    settings = load_settings(_env_file=None)
    assert settings.api_key_headers == ["x-tenant-key", "x-partner-token"]
    with pytest.raises(ConfigurationError, match="PYNOMALY_SECURITY__API_KEY_HEADERS"):
        load_settings(_env_file=None, api_key_headers=["not a header"])
