"""A small app for the SIGKILL durability test, configured by the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pynomaly_security.audit import AuditLevel, AuditLogger, SecurityEventType
from pynomaly_security.middleware.audit import AuditMiddleware
from pynomaly_security.settings import load_settings


def create_app() -> Starlette:
    audit = AuditLogger.from_settings(load_settings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with audit:
            yield

    async def event(request: Request) -> JSONResponse:
        n = int(request.query_params["n"])
        seq = await audit.log_security_event(
            SecurityEventType.LOGIN_FAILURE,
            "load",
            AuditLevel.WARNING,
            {"n": n},
            user_id=f"u{n % 7}",
        )
        return JSONResponse({"seq": seq, "n": n})

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/event", event, methods=["POST"]), Route("/ping", ping)],
        middleware=[Middleware(AuditMiddleware, audit_logger=audit, log_line=False)],
        lifespan=lifespan,
    )
