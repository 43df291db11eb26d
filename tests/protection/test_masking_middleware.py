"""ResponseMaskingMiddleware against real Starlette apps and raw ASGI messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.middleware.masking import ResponseMaskingMiddleware
from pynomaly_security.protection import REDACTED

CUSTOMER = {
    "id": 1,
    "card": "4111 1111 1111 1111",
    "contact": {"email": "ada@example.com", "phone": "+14155552671"},
    "orders": [{"iban": "GB82WEST12345698765432"}, {"iban": "DE89370400440532013000"}],
    "notes": "plain words",
}


async def _chunks() -> AsyncIterator[bytes]:
    yield b'{"card": "4111 1111'
    yield b' 1111 1111"}'


def _app(routes: dict[str, list[str]], **kwargs: Any) -> Starlette:
    async def customer(request: Request) -> Response:
        return JSONResponse(CUSTOMER)

    async def text(request: Request) -> Response:
        return PlainTextResponse("card 4111 1111 1111 1111")

    async def stream(request: Request) -> Response:
        return StreamingResponse(_chunks(), media_type="application/json")

    async def problem(request: Request) -> Response:
        return JSONResponse(CUSTOMER, media_type="application/problem+json")

    return Starlette(
        routes=[
            Route("/customers/1", customer),
            Route("/other", customer),
            Route("/text", text),
            Route("/stream", stream),
            Route("/problem", problem),
        ],
        middleware=[Middleware(ResponseMaskingMiddleware, routes=routes, **kwargs)],
    )


@pytest.mark.anyio
async def test_configured_fields_are_masked(
    make_client: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    """Listed fields (nested, through lists) are masked; the length header matches the new body."""
    app = _app({"/customers/*": ["card", "contact.email", "orders.iban", "notes"]})
    async with make_client(app) as client:
        response = await client.get("/customers/1")
    assert response.json() == {
        "id": 1,
        "card": "****1111",
        "contact": {"email": "a***@example.com", "phone": "+14155552671"},
        "orders": [{"iban": "GB82****5432"}, {"iban": "DE89****3000"}],
        "notes": REDACTED,
    }
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.anyio
async def test_star_masks_every_classified_value(
    make_client: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    """The path "*" masks whatever the classifier finds, and nothing else."""
    async with make_client(_app({"/problem": ["*"]})) as client:
        body = (await client.get("/problem")).json()
    assert body["contact"] == {"email": "a***@example.com", "phone": "****2671"}
    assert body["notes"] == "plain words"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/other", id="route-not-configured"),
        pytest.param("/text", id="not-json"),
        pytest.param("/stream", id="streaming-json"),
    ],
)
async def test_everything_else_passes_untouched(
    path: str, make_client: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    """Other routes, non-JSON and streaming responses are byte-for-byte what the app sent."""
    app = _app({"/text": ["*"], "/stream": ["card"], "/customers/*": ["card"]})
    async with make_client(app) as client:
        response = await client.get(path)
    assert "4111 1111 1111 1111" in response.text


@pytest.mark.anyio
async def test_oversized_json_passes_through_with_warning(
    make_client: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    """A body over max_body_size is not buffered (memory stays bounded); a warning says so."""
    from structlog.testing import capture_logs

    app = _app({"/customers/*": ["card"]}, max_body_size=50)
    with capture_logs() as logs:
        async with make_client(app) as client:
            response = await client.get("/customers/1")
    assert response.json()["card"] == "4111 1111 1111 1111"
    assert logs[0]["event"] == "response_masking_skipped" and logs[0]["reason"] == "too_large"


@pytest.mark.anyio
async def test_raw_asgi_chunked_body_with_length_is_reassembled() -> None:
    """A JSON body sent in several messages with a Content-Length is buffered and masked."""
    body = b'{"card": "4111111111111111"}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:], "more_body": False})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware = ResponseMaskingMiddleware(app, routes={"/x": ["card"]})
    scope = {"type": "http", "path": "/x", "method": "GET", "headers": []}
    await middleware(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b'{"card":"****1111"}'
    assert (b"content-length", b"19") in sent[0]["headers"]


@pytest.mark.anyio
async def test_websocket_and_lifespan_pass_through() -> None:
    """Non-HTTP scopes go straight to the app."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = ResponseMaskingMiddleware(app, routes={"/x": ["card"]})
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "websocket", "path": "/x"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize(
    "routes",
    [
        pytest.param({"/x": []}, id="empty-list"),
        pytest.param({"/x": "card"}, id="string-not-list"),
        pytest.param({"/x": [""]}, id="empty-path"),
    ],
)
def test_invalid_configuration_fails_at_construction(routes: dict[str, Any]) -> None:
    """Bad route configuration is a ConfigurationError when the middleware is built."""
    with pytest.raises(ConfigurationError):
        ResponseMaskingMiddleware(lambda s, r, se: None, routes=routes)  # type: ignore[arg-type,return-value]


@pytest.mark.anyio
async def test_head_requests_pass_through(
    make_client: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    """HEAD keeps the GET body's Content-Length (no body is sent, so nothing is masked)."""
    app = _app({"/customers/*": ["card"]})
    async with make_client(app) as client:
        get = await client.get("/customers/1")
        head = await client.head("/customers/1")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > int(get.headers["content-length"])
