"""Layers that compose by themselves: the fused outer layer and the standalone
middlewares share one HeaderPolicy and one AccessRecorder and answer alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pynomaly_security import ConfigurationError
from pynomaly_security.middleware.audit import AccessRecorder, AuditMiddleware
from pynomaly_security.middleware.headers import HeaderPolicy, SecurityHeadersMiddleware
from pynomaly_security.middleware.stack import SecurityMiddleware
from pynomaly_security.middleware.tracking import UserTrackingMiddleware

MakeClient = Callable[[ASGIApp], httpx.AsyncClient]


class AccessLog:
    """An application's own access log: what the recorder hands it, kept in a list."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def log_request(self, **fields: Any) -> None:
        self.requests.append(fields)

    async def log_security_event(
        self, event_type: Any, message: str, level: Any, **kw: Any
    ) -> None:
        self.events.append((str(event_type.value), kw["details"]))


def _inner() -> Starlette:
    async def data(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    async def login(request: Request) -> JSONResponse:
        return JSONResponse({"ok": False}, status_code=401)

    return Starlette(
        routes=[
            Route("/data", data),
            Route("/page", page),
            Route("/login", login, methods=["POST"]),
        ]
    )


def _fused(log: AccessLog) -> ASGIApp:
    return SecurityMiddleware(
        _inner(), headers=HeaderPolicy(), access=AccessRecorder(log, log_line=False)
    )


def _stacked(log: AccessLog) -> ASGIApp:
    inner = AuditMiddleware(_inner(), recorder=AccessRecorder(log, log_line=False))
    return UserTrackingMiddleware(SecurityHeadersMiddleware(inner, policy=HeaderPolicy()))


async def _exchange(app: ASGIApp, make_client: MakeClient) -> list[dict[str, str]]:
    answers = []
    async with make_client(app) as client:
        for response in (
            await client.get("/data"),
            await client.get("/page"),
            await client.post("/login", json={"username": "ada", "password": "no"}),
        ):
            headers = dict(response.headers)
            assert len(headers.pop("x-request-id")) == 32
            headers.pop("content-length")
            answers.append(headers)
    return answers


@pytest.mark.anyio
async def test_the_fused_layer_answers_as_the_three_layers(make_client: MakeClient) -> None:
    """Same response headers (CSP by content type, document-only headers off JSON), the
    same access rows and the same committed login failure, fused or stacked."""
    fused_log, stacked_log = AccessLog(), AccessLog()
    fused = await _exchange(_fused(fused_log), make_client)
    stacked = await _exchange(_stacked(stacked_log), make_client)
    assert fused == stacked
    assert "referrer-policy" not in fused[0] and "referrer-policy" in fused[1]
    assert fused[0]["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"

    def rows(log: AccessLog) -> list[tuple[object, ...]]:
        return [(r["method"], r["path"], r["status_code"]) for r in log.requests]

    assert (
        rows(fused_log)
        == rows(stacked_log)
        == [
            ("GET", "/data", 200),
            ("GET", "/page", 200),
            ("POST", "/login", 401),
        ]
    )
    assert [kind for kind, _ in fused_log.events] == [kind for kind, _ in stacked_log.events]
    assert [d["username"] for _, d in fused_log.events] == ["ada"]


def test_each_standalone_middleware_takes_its_object_or_its_options() -> None:
    """A policy or its options, a recorder or its audit logger: one of the two, else a
    ConfigurationError that says so."""
    app = _inner()
    assert SecurityHeadersMiddleware(app, hsts=False).policy is not None
    policy = HeaderPolicy()
    assert SecurityHeadersMiddleware(app, policy=policy).policy is policy
    with pytest.raises(ConfigurationError, match="not both"):
        SecurityHeadersMiddleware(app, policy=policy, hsts=False)
    log = AccessLog()
    recorder = AccessRecorder(log)
    assert AuditMiddleware(app, recorder=recorder).recorder is recorder
    assert AuditMiddleware(app, audit_logger=log).recorder.audit_logger is log
    with pytest.raises(ConfigurationError, match="not both"):
        AuditMiddleware(app, recorder=recorder, audit_logger=log)
    with pytest.raises(ConfigurationError, match="needs a recorder"):
        AuditMiddleware(app)
