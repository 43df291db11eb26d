"""Layers whose ``__call__`` returns the inner app's awaitable (middleware/_asgi.py)
are still ASGI 3 apps to a server that inspects them, and serve through either path."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.storage.memory import MemoryStore


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _inner() -> Starlette:
    return Starlette(routes=[Route("/hello", hello), Route("/login", hello, methods=["POST"])])


def _layers() -> list[ASGIApp]:
    return [
        InputInspectionMiddleware(_inner()),
        RateLimitMiddleware(_inner(), route_limits={"/login": ["5/minute"]}),
        LoginLockoutMiddleware(_inner(), lockouts=LockoutManager(MemoryStore())),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["inspection", "rate-limit", "login-guard"])
def test_a_server_sees_an_asgi3_app(index: int) -> None:
    """uvicorn's interface detection (``interface="auto"``) reads each layer as ASGI 3,
    so the layer can be the app a server runs."""
    layer = _layers()[index]
    assert asyncio.iscoroutinefunction(layer.__call__)  # type: ignore[operator]
    config = uvicorn.Config(layer)
    config.load()
    assert config.interface == "asgi3"


@pytest.mark.parametrize("index", [0, 1, 2], ids=["inspection", "rate-limit", "login-guard"])
@pytest.mark.anyio
async def test_both_paths_serve(index: int) -> None:
    """A request the layer passes through and one it handles itself both get the app's answer."""
    transport = httpx.ASGITransport(app=_layers()[index])
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(2):  # the inspection layer: inspected, then remembered as clean
            assert (await client.get("/hello")).json() == {"ok": True}
        login = await client.post("/login", json={"username": "ada", "password": "x"})
        assert login.status_code == 200
