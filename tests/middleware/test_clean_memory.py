"""The inspection layer's memory of clean requests (``InputInspectionMiddleware.clean``):
keyed on what the verdict depends on (path, query, the headers the inspector
reads), never on a credential; a changed value is inspected again; a request
remembered over HTTP/1.1 never stands for one over HTTP/2 (where a body needs no
header)."""

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
from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.middleware._clean import CleanRequests
from pynomaly_security.middleware.inspection import InputInspectionMiddleware

SECRET = "s3cr3t-token-value-0123456789"


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"body": (await request.body()).decode()})


def _inner() -> Starlette:
    return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])


def _layer(app: FastAPI) -> InputInspectionMiddleware:
    layer: object = app.middleware_stack
    while not isinstance(layer, InputInspectionMiddleware):
        layer = getattr(layer, "app")  # noqa: B009  # down the built stack
    return layer


@pytest.mark.parametrize(
    ("credential", "kept"),
    [
        # Not read by the inspector: the request is remembered, without the header.
        pytest.param(("Authorization", f"Bearer {SECRET}"), True, id="authorization"),
        pytest.param(("Proxy-Authorization", f"Basic {SECRET}"), True, id="proxy-authorization"),
        # Read by the inspector but secret: such a request is not remembered at all.
        pytest.param(("Cookie", f"session={SECRET}"), False, id="cookie"),
        pytest.param(("X-API-Key", SECRET), False, id="x-api-key"),
        pytest.param(("X-Tenant-Key", SECRET), False, id="settings-api-key-header"),
    ],
)
@pytest.mark.anyio
async def test_no_credential_is_ever_in_the_memory(
    make_client: Callable[[ASGIApp], httpx.AsyncClient], credential: tuple[str, str], kept: bool
) -> None:
    """A clean bodiless request is remembered once; the same request with a token, a
    cookie, an API key or a header the settings name as an API-key header adds at
    most its credential-free key, however often it comes, and the secret is
    nowhere in the memory."""
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
        memory = _layer(app).clean
        assert len(memory) == 1
        for _ in range(3):
            answer = await client.get(
                "/echo", headers={"X-Trace": "t1", credential[0]: credential[1]}
            )
            assert answer.status_code == 200
    assert len(memory) == 1
    header = (credential[0].lower().encode(), SECRET.encode())
    if kept:  # not read by the inspector: the key without it stands for the request
        assert memory.key(b"/echo", b"", [header]) == memory.key(b"/echo", b"", [])
    else:
        assert memory.key(b"/echo", b"", [header]) is None
    assert SECRET not in repr(vars(memory))


def test_a_changed_value_is_inspected_again() -> None:
    """The key is the path, query and inspected headers: any change in those (a
    header, a cookie, the query) gives another key, a header the inspector does not
    read gives the same, and a request that announces a body has none."""
    inspector = Inspector()
    memory = CleanRequests(inspector)
    ua = (b"user-agent", b"Mozilla/5.0")
    sid = (b"x-app-version", b"2.1")
    clean = RequestParts("GET", "/items", b"page=2", (ua, sid))

    def key(parts: RequestParts) -> tuple[object, ...] | None:
        return memory.key(parts.path, parts.query_string, parts.headers)

    assert not inspector.inspect(clean).findings
    clean_key = key(clean)
    assert clean_key is not None and not memory.known(clean_key)
    memory.add(clean_key)  # what the middleware does with a clean verdict
    assert memory.known(clean_key)
    shellshock = (b"user-agent", b"() { :; }; /bin/cat /etc/passwd")
    jndi = (b"x-api-version", b"${jndi:ldap://x/a}")
    attacks = [
        RequestParts("GET", "/items", b"page=2", (shellshock, sid)),
        RequestParts("GET", "/items", b"page=2", (ua, (b"x-app-version", b"' OR '1'='1"))),
        RequestParts("GET", "/items", b"page=2", (ua, (b"cookie", b"sid=' OR '1'='1"))),
        RequestParts("GET", "/items", b"page=2' OR '1'='1", (ua, sid)),
        RequestParts("GET", "/items/../../etc/passwd", b"page=2", (ua, sid)),
        RequestParts("GET", "/items", b"page=2", (ua, sid, jndi)),
    ]
    for parts in attacks:
        attack_key = key(parts)
        assert attack_key is None or not memory.known(attack_key), parts
        assert inspector.inspect(parts).blocked, parts
    # Headers the inspector does not read change neither the verdict nor the key.
    other = RequestParts("GET", "/items", b"page=2", (ua, sid, (b"accept-encoding", b"br")))
    assert not inspector.inspect(other).findings
    assert key(other) == clean_key
    # A request that announces a body has no key: its body decides its verdict.
    with_body = RequestParts("GET", "/items", b"page=2", (ua, (b"content-length", b"12")))
    assert key(with_body) is None


@pytest.mark.anyio
async def test_the_memory_holds_only_http_1() -> None:
    """A bodiless GET remembered over HTTP/1.1 does not let the same method, path
    and headers through over HTTP/2 uninspected, where a body needs no header."""
    layer = InputInspectionMiddleware(_inner())
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

        await layer(scope, receive, send)
        return int(sent[0]["status"])

    for _ in range(3):  # inspected, found clean, then remembered
        assert await call("1.1", b"") == 200
    assert len(layer.clean) == 1
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
