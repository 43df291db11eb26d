"""LoginLockoutMiddleware: a host app's own login route gets the shared lockout."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import STATE_KEY, RequestContext
from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.exceptions import ConfigurationError
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
        assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"  # clock still
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


def stalled_login(first_chunk: bytes) -> Receive:
    """A client that sends the start of a login body and never the rest."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first_chunk, "more_body": True}
        await anyio.sleep_forever()  # the outside world: a client that stalls
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


def login_scope(client: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t"), (b"content-type", b"application/json")],
        "client": (client, 50000),
        "server": ("t", 80),
    }


@pytest.mark.anyio
async def test_a_login_body_that_never_ends_gets_408(clock: Clock) -> None:
    """A login body trickled and never finished is answered 408 body_read_timeout
    (with the short timeout the test sets) instead of holding the request and its
    login slot: the endpoint never runs and nothing is reserved or counted."""
    store = MemoryStore(clock=clock)
    lockouts = LockoutManager(store, clock=clock)
    reached: list[str] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])  # pragma: no cover

    guarded = LoginLockoutMiddleware(
        endpoint,
        lockouts=lockouts,
        ip_limits=["30/minute"],
        account_limits=["10/minute"],
        body_read_timeout=0.05,
    )
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await guarded(login_scope("198.51.100.9"), stalled_login(b'{"username": "al'), send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"] == "body_read_timeout"
    assert reached == [] and len(store) == 0


def test_the_login_body_timeout_must_be_positive() -> None:
    """A timeout of zero or less is refused when the middleware is built."""
    lockouts = LockoutManager(MemoryStore())
    with pytest.raises(ConfigurationError, match="body_read_timeout"):
        LoginLockoutMiddleware(host_app(), lockouts=lockouts, body_read_timeout=0)


# -- the per-account limits count only attempts that are checked -------------------------

OWNER = {"username": "alice", "password": "right password"}


async def login_from(app: ASGIApp, address: str, body: dict[str, str]) -> int:
    """POST /login from the client ``address``; the answer's status."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return (await client.post("/login", json=body)).status_code


def limited_guard(clock: Clock, **limits: object) -> LoginLockoutMiddleware:
    """The host app behind the guard with the default login limits (per address
    30/minute; per account 10/minute from all addresses), on a store whose clock
    stands still, so no window rolls over during a test."""
    lockouts = LockoutManager(MemoryStore(clock=clock), clock=clock)
    settings: dict[str, object] = {"ip_limits": ["30/minute"], "account_limits": ["10/minute"]}
    settings.update(limits)
    return LoginLockoutMiddleware(host_app(), lockouts=lockouts, **settings)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_locked_out_address_does_not_keep_the_owner_out(clock: Clock) -> None:
    """One address trickling 30 wrong passwords at alice is locked after 5; the
    attempts refused after that are not counted against alice's account limit, so
    alice still signs in from her own address."""
    guard = limited_guard(clock)
    attacker = [
        await login_from(guard, "192.0.2.66", {"username": "alice", "password": f"guess-{i}"})
        for i in range(30)
    ]
    assert attacker == [401] * 5 + [429] * 25
    assert await login_from(guard, "192.0.2.7", OWNER) == 200


@pytest.mark.anyio
async def test_unchecked_attempts_from_one_address_do_not_keep_the_owner_out(
    clock: Clock,
) -> None:
    """Logins the app refuses unchecked (422: no password) never lock their address;
    one address sending 30 of them spends only its own share of alice's account
    limit (5/minute), so alice still signs in from her own address."""
    guard = limited_guard(clock, account_ip_limits=["5/minute"])
    attacker = [await login_from(guard, "192.0.2.66", {"username": "alice"}) for _ in range(30)]
    assert attacker == [422] * 5 + [429] * 25
    assert await login_from(guard, "192.0.2.7", OWNER) == 200


@pytest.mark.anyio
async def test_many_addresses_each_guessing_a_few_times_meet_the_account_limit(
    clock: Clock,
) -> None:
    """Twenty addresses, two guesses each (none near its own lockout or its share):
    the account limit of 10/minute holds across them, and while it does the right
    password is refused too (the trade-off of a per-account cap)."""
    guard = limited_guard(clock, account_ip_limits=["5/minute"])
    statuses = [
        await login_from(guard, f"192.0.2.{i}", {"username": "alice", "password": f"g{i}-{n}"})
        for i in range(1, 21)
        for n in range(2)
    ]
    assert statuses == [401] * 10 + [429] * 30
    assert await login_from(guard, "192.0.2.99", OWNER) == 429
