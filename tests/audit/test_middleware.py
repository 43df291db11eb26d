"""AuditMiddleware over real apps: one record and one log line per request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from pynomaly_security._context import STATE_KEY, RequestContext
from pynomaly_security.audit import AuditLogger
from pynomaly_security.middleware.audit import REQUEST_EVENT, AuditMiddleware
from pynomaly_security.settings import SecuritySettings

MakeClient = Callable[[ASGIApp], httpx.AsyncClient]


class _SetContext:
    """Stands in for the tracking middleware: puts a RequestContext in scope state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[STATE_KEY] = RequestContext("rid-123", "192.0.2.1")
        await self.app(scope, receive, send)


def _app(audit: AuditLogger, lifespan: Any = None) -> Starlette:
    async def item(request: Request) -> JSONResponse:
        request.state.pynomaly_security.user_id = "alice"
        return JSONResponse({"ok": True})

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("database password is hunter2")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(chunks())

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await request.body())

    return Starlette(
        routes=[
            Route("/items/{id}", item),
            Route("/boom", boom),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(_SetContext), Middleware(AuditMiddleware, audit_logger=audit)],
        lifespan=lifespan,
    )


@pytest.mark.anyio
async def test_one_record_per_request_without_query_values(
    audit: AuditLogger, make_client: MakeClient
) -> None:
    """Method, path, status, duration, request id, ip and user id are recorded; the query is not."""
    with structlog.testing.capture_logs() as logs:
        async with make_client(_app(audit)) as client:
            response = await client.get("/items/7?token=s3cr3t")
    assert response.status_code == 200
    await audit.aclose()
    await audit.start()
    [record] = await audit.query()
    assert record["method"] == "GET"
    assert record["path"] == "/items/7"
    assert record["status_code"] == 200
    assert record["request_id"] == "rid-123"
    assert record["source_ip"] == "192.0.2.1"
    assert record["user_id"] == "alice"
    assert "s3cr3t" not in str(record)
    [line] = [e for e in logs if e["event"] == REQUEST_EVENT]
    assert line["path"] == "/items/7" and line["status_code"] == 200
    # The duration is the real perf_counter's (the layer takes no clock): the record
    # and the log line carry the same one, and it is a duration, so not negative.
    assert record["duration_ms"] == line["duration_ms"] >= 0
    assert "s3cr3t" not in str(line)


@pytest.mark.anyio
async def test_exception_is_recorded_as_500_and_reraised(
    audit: AuditLogger, make_client: MakeClient
) -> None:
    """An unhandled error is a 500 record; the exception still propagates."""
    app = _app(audit)
    async with make_client(app) as client:
        with pytest.raises(RuntimeError):
            await client.get("/boom")
    await audit.aclose()
    await audit.start()
    [record] = await audit.query()
    assert record["status_code"] == 500
    assert record["level"] == "error"
    assert "hunter2" not in str(record)


@pytest.mark.anyio
async def test_streaming_and_bodies_pass_untouched(
    audit: AuditLogger, make_client: MakeClient
) -> None:
    """Streaming responses and request bodies are not buffered or altered."""
    async with make_client(_app(audit)) as client:
        assert (await client.get("/stream")).text == "ab"
        assert (await client.post("/echo", content=b"x" * 70_000)).content == b"x" * 70_000
    await audit.aclose()
    await audit.start()
    records = await audit.query()
    assert [r["path"] for r in records] == ["/stream", "/echo"]
    assert "xxxx" not in str(records)


def test_websocket_passes_through(
    db_url: str, settings_for: Callable[..., SecuritySettings]
) -> None:
    """Websockets are not audited as requests and work through the middleware."""

    audit = AuditLogger.from_settings(settings_for(db_url))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with audit:
            yield

    with TestClient(_app(audit, lifespan)) as client, client.websocket_connect("/ws") as websocket:
        assert websocket.receive_text() == "hi"
