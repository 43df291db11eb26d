"""LoginLockoutMiddleware: a host app's own login route gets the shared lockout."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security._context import STATE_KEY, RequestContext
from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.storage.memory import MemoryStore

from .conftest import Clock


class Login(BaseModel):
    username: str
    password: str


def host_app() -> FastAPI:
    """An app with its own login route, knowing nothing about lockouts."""
    app = FastAPI()

    @app.post("/login")
    async def login(body: Login) -> dict[str, str]:
        if body.password != "right password":
            raise HTTPException(401, "invalid credentials")
        return {"user": body.username}

    return app


def with_context(app: ASGIApp, username: str) -> ASGIApp:
    """Stands in for the tracking middleware, which puts the user name in the context."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = RequestContext(request_id="r", client_ip="203.0.113.5", login_username=username)
        scope.setdefault("state", {})[STATE_KEY] = ctx
        await app(scope, receive, send)

    return wrapped


@pytest.mark.anyio
async def test_host_login_route_locks_and_resets(clock: Clock) -> None:
    """401s count, the lock answers 429 before the endpoint, and a success resets."""
    lockouts = LockoutManager(MemoryStore(clock=clock), max_attempts=3, clock=clock)
    guarded = LoginLockoutMiddleware(host_app(), lockouts=lockouts)
    transport = httpx.ASGITransport(app=with_context(guarded, "alice"))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        bad = {"username": "alice", "password": "nope"}
        good = {"username": "alice", "password": "right password"}
        assert (await client.post("/login", json=bad)).status_code == 401
        assert (await client.post("/login", json=good)).status_code == 200  # resets the count
        codes = [(await client.post("/login", json=bad)).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        locked = await client.post("/login", json=good)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
        assert locked.json()["error"] == "too_many_login_attempts"
        assert (await client.get("/docs")).status_code == 200  # other routes untouched


@pytest.mark.anyio
async def test_without_tracking_uses_resolver(clock: Clock) -> None:
    """Without a request context the client IP comes from the resolver (lock by IP)."""
    lockouts = LockoutManager(MemoryStore(clock=clock), by="ip", max_attempts=2, clock=clock)
    guarded = LoginLockoutMiddleware(host_app(), lockouts=lockouts, login_paths=["/login"])
    transport = httpx.ASGITransport(app=guarded, client=("198.51.100.4", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(2):
            await client.post("/login", json={"username": "x", "password": "nope"})
        blocked = await client.post("/login", json={"username": "y", "password": "right password"})
    assert blocked.status_code == 429
