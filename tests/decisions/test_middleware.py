"""``DecisionMiddleware`` through real ASGI apps: each action (ban, throttle,
read_only, require_mfa, raise_detection_level), every scope a request has, expiry on a
fake clock, the allow-list, lists, and the empty index passing the request through
without a frame of its own (issue 16, item 3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security import setup_security_middleware
from pynomaly_security._context import STATE_KEY, RequestContext
from pynomaly_security.decisions import AllowList, Decision, DecisionIndex, DecisionView
from pynomaly_security.decisions.middleware import MFA_VERIFIED, SESSION_ID, DecisionMiddleware
from pynomaly_security.decisions.model import DecisionAction, DecisionScope, api_key_fingerprint
from pynomaly_security.intel import IPRangeSet
from pynomaly_security.intel.store import IntelList
from pynomaly_security.middleware.inspection import RAISED_DETECTION
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.memory import MemoryStore

CLIENT = "203.0.113.7"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def decision(scope: str, value: str, action: str, ttl: float = 60.0) -> Decision:
    return Decision(
        DecisionScope(scope), value, DecisionAction(action), "manual", "test", NOW, NOW + ttl
    )


class WithContext:
    """Plays the tracking layer: a request context, with what the test puts in it."""

    def __init__(self, app: ASGIApp, *, user: str | None = None, **extra: Any) -> None:
        self.app, self.user, self.extra = app, user, extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            ctx = RequestContext("req-1", scope["client"][0], user_id=self.user)
            ctx.extra.update(self.extra)
            scope.setdefault("state", {})[STATE_KEY] = ctx
        await self.app(scope, receive, send)


async def seen(request: Request) -> JSONResponse:
    return JSONResponse({"raised": RAISED_DETECTION in request.scope})


def make_app(
    view: DecisionView,
    clock: Clock,
    *,
    allow: AllowList | None = None,
    context: dict[str, Any] | None = None,
    throttle: int = 2,
) -> Starlette:
    middleware = [
        Middleware(
            DecisionMiddleware,
            view=view,
            allow=allow,
            store=MemoryStore(clock=clock),
            throttle_per_minute=throttle,
            clock=clock,
        )
    ]
    if context is not None:
        middleware.insert(0, Middleware(WithContext, **context))
    routes = [Route(p, seen, methods=["GET", "POST"]) for p in ("/", "/health", "/admin")]
    return Starlette(routes=routes, middleware=middleware)


def client(app: ASGIApp, ip: str = CLIENT) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def view_of(*decisions: Decision, lists: dict[str, IntelList] | None = None) -> DecisionView:
    return DecisionView(DecisionIndex.build(decisions, lists, now=NOW))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("made", "context", "headers", "status", "error"),
    [
        pytest.param(("ip", CLIENT, "ban"), None, {}, 403, "banned", id="ip-ban"),
        pytest.param(("cidr", "203.0.113.0/24", "ban"), None, {}, 403, "banned", id="cidr-ban"),
        pytest.param(("user", "bob", "ban"), {"user": "bob"}, {}, 403, "banned", id="user-ban"),
        pytest.param(
            ("session", "s-1", "ban"), {SESSION_ID: "s-1"}, {}, 403, "banned", id="session-ban"
        ),
        pytest.param(
            ("api_key", api_key_fingerprint("k-123"), "ban"),
            None,
            {"X-API-Key": "k-123"},
            403,
            "banned",
            id="api-key-ban",
        ),
        pytest.param(("route", "/admin", "ban"), None, {}, 200, None, id="other-route-passes"),
        pytest.param(
            ("tenant", "acme", "ban"), None, {"X-Tenant-ID": "acme"}, 403, "banned", id="tenant"
        ),
        pytest.param(("ip", "2001:db8::1", "ban"), None, {}, 200, None, id="other-ip-passes"),
    ],
)
async def test_a_ban_refuses_requests_of_its_scope_and_value(
    made: tuple[str, str, str],
    context: dict[str, Any] | None,
    headers: dict[str, str],
    status: int,
    error: str | None,
) -> None:
    """Each scope is looked up from the request: 403 ``banned`` when it matches, the
    app's answer when it does not."""
    app = make_app(view_of(decision(*made)), Clock(), context=context)
    async with client(app) as c:
        answer = await c.get("/", headers=headers)
    assert answer.status_code == status, answer.text
    if error is not None:
        assert answer.json()["error"] == error


@pytest.mark.anyio
async def test_read_only_refuses_unsafe_methods_only() -> None:
    """GET passes; POST is 403 ``read_only``."""
    app = make_app(view_of(decision("ip", CLIENT, "read_only")), Clock())
    async with client(app) as c:
        assert (await c.get("/")).status_code == 200
        refused = await c.post("/", json={})
    assert refused.status_code == 403 and refused.json()["error"] == "read_only"


@pytest.mark.anyio
async def test_require_mfa_answers_rfc_9470_unless_the_context_shows_mfa() -> None:
    """Without MFA: 401 with ``insufficient_user_authentication``; with
    ``ctx.extra["mfa"]`` true the request passes."""
    view = view_of(decision("user", "bob", "require_mfa"))
    async with client(make_app(view, Clock(), context={"user": "bob"})) as c:
        refused = await c.get("/")
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    with_mfa = make_app(view, Clock(), context={"user": "bob", MFA_VERIFIED: True})
    async with client(with_mfa) as c:
        assert (await c.get("/")).status_code == 200


@pytest.mark.anyio
async def test_throttle_lets_a_few_through_then_429_with_retry_after() -> None:
    """Two requests a minute pass; the third is 429 with a Retry-After in 1..60; a
    minute later (fake clock) requests pass again."""
    clock = Clock()
    app = make_app(view_of(decision("ip", CLIENT, "throttle", ttl=3600)), clock, throttle=2)
    async with client(app) as c:
        assert [(await c.get("/")).status_code for _ in range(2)] == [200, 200]
        limited = await c.get("/")
        assert limited.status_code == 429 and limited.json()["error"] == "throttled"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        clock.now += 121
        assert (await c.get("/")).status_code == 200


@pytest.mark.anyio
async def test_raise_detection_level_marks_the_request_for_inspection() -> None:
    """The app sees the request marked for the inspection layer; without the decision
    it is not."""
    app = make_app(view_of(decision("ip", CLIENT, "raise_detection_level")), Clock())
    async with client(app) as c:
        assert (await c.get("/")).json() == {"raised": True}
    async with client(app, "198.51.100.1") as c:
        assert (await c.get("/")).json() == {"raised": False}


@pytest.mark.anyio
async def test_a_raised_level_blocks_what_the_default_level_lets_through() -> None:
    """Through the default stack: two weak signals (score 4) pass level 2, also when
    repeated (the memory of clean requests); once the address has a
    raise_detection_level decision the same request is inspected at level 4: 403."""
    app = FastAPI()

    @app.get("/search")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    stack = setup_security_middleware(
        app,
        settings=SecuritySettings(_env_file=None, development_mode=True, admin_api_key="k" * 32),
        enable_audit_logging=False,
    )
    weak = {"q": "<i #{x}"}
    async with stack, client(app) as c:
        assert [(await c.get("/search", params=weak)).status_code for _ in range(2)] == [200, 200]
        assert stack.decisions is not None
        await stack.decisions.add("ip", CLIENT, "raise_detection_level")
        assert (await c.get("/search", params=weak)).status_code == 403
        assert (await c.get("/search", params={"q": "plain"})).status_code == 200


@pytest.mark.anyio
async def test_an_expired_decision_no_longer_applies() -> None:
    """A ban of 60 s refuses until its expiry (fake clock), then the request passes."""
    clock = Clock()
    app = make_app(view_of(decision("ip", CLIENT, "ban", ttl=60)), clock)
    async with client(app) as c:
        assert (await c.get("/")).status_code == 403
        clock.now += 60
        assert (await c.get("/")).status_code == 200


@pytest.mark.anyio
async def test_the_allow_list_is_never_refused() -> None:
    """A health path and an address in an admin network pass a ban that covers them
    (a CIDR ban made before the admin network was listed)."""
    view = view_of(decision("cidr", "203.0.113.0/24", "ban"))
    allow = AllowList(["203.0.113.7/32"], ["/health"])
    app = make_app(view, Clock(), allow=allow)
    async with client(app, "203.0.113.8") as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/")).status_code == 403
    async with client(app, CLIENT) as c:
        assert (await c.get("/")).status_code == 200


@pytest.mark.anyio
async def test_an_enforcing_list_refuses_its_addresses_and_flag_refuses_none() -> None:
    """A ``ban`` list refuses an address in its ranges (IPv4 and IPv6), a ``require_mfa``
    list asks for MFA, a ``flag`` list enforces nothing, an expired list nothing."""
    ranges = IPRangeSet(["198.51.100.0/24", "2001:db8::/32"])
    lists = {
        "drop": IntelList("drop", "ban", NOW, NOW + 60, 2, ranges, "r1"),
        "tor": IntelList("tor", "require_mfa", NOW, NOW + 60, 1, IPRangeSet(["192.0.2.1"]), "r2"),
        "watch": IntelList("watch", "flag", NOW, NOW + 60, 1, IPRangeSet([CLIENT]), "r3"),
        "old": IntelList("old", "ban", NOW - 100, NOW - 1, 1, IPRangeSet(["192.0.2.9"]), "r4"),
    }
    app = make_app(view_of(lists=lists), Clock())
    expected = {
        "198.51.100.77": 403,
        "2001:db8::abcd": 403,
        "192.0.2.1": 401,
        CLIENT: 200,
        "192.0.2.9": 200,
        "2001:db9::1": 200,
    }
    got = {}
    for ip in expected:
        async with client(app, ip) as c:
            got[ip] = (await c.get("/")).status_code
    assert got == expected


@pytest.mark.anyio
async def test_nothing_in_force_returns_the_inner_apps_awaitable() -> None:
    """With an empty index the layer returns what the app it wraps returned, the
    same object: no coroutine frame of its own (``middleware/_asgi.py``)."""
    returned: list[Any] = []

    def inner(scope: Scope, receive: Receive, send: Send) -> Any:
        awaitable = _done()
        returned.append(awaitable)
        return awaitable

    layer = DecisionMiddleware(inner, view=DecisionView())
    scope = {"type": "http", "path": "/", "method": "GET", "headers": []}
    result = layer(scope, _never, _never)
    assert result is returned[0]
    await result


async def _done() -> None:
    return None


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


@pytest.mark.anyio
async def test_with_nothing_in_force_the_layer_is_out_of_the_request_path() -> None:
    """After the lifespan started, the tracking layer calls the rate limiter directly
    (the decision layer costs nothing); a decision puts the layer back and refuses;
    its revert takes it out again."""
    from pynomaly_security.middleware.stack import SecurityMiddleware

    app = FastAPI()

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    stack = setup_security_middleware(
        app,
        settings=SecuritySettings(_env_file=None, development_mode=True, admin_api_key="k" * 32),
        enable_audit_logging=False,
    )
    assert stack.decisions is not None
    async with app.router.lifespan_context(app), client(app) as c:
        assert (await c.get("/")).status_code == 200
        outer = app.middleware_stack
        while not isinstance(outer, SecurityMiddleware):
            outer = outer.app  # type: ignore[union-attr]
        assert not isinstance(outer.app, DecisionMiddleware)
        ban = await stack.decisions.add("ip", CLIENT, "ban")
        assert isinstance(outer.app, DecisionMiddleware)
        assert (await c.get("/")).status_code == 403
        await stack.decisions.revert(ban.decision_id)
        assert not isinstance(outer.app, DecisionMiddleware)
        assert (await c.get("/")).status_code == 200


@pytest.mark.anyio
async def test_once_everything_expired_the_index_is_empty_again() -> None:
    """A decision that expired (fake clock) leaves the index at the next refresh even
    though nothing changed in the store: the layer's fast path comes back."""
    from pynomaly_security.decisions import DecisionService
    from pynomaly_security.storage import StorageRegistry

    clock = Clock()
    settings = SecuritySettings(_env_file=None, development_mode=True)
    async with StorageRegistry() as registry:
        store = registry.store("memory://")
        service = DecisionService(settings, store, store, clock=clock)
        await service.start()
        await service.add("ip", CLIENT, "ban", ttl=60)
        assert not service.view.index.empty
        clock.now += 61
        assert await service.sync.refresh()
        assert service.view.index.empty
        await service.aclose()


@pytest.mark.anyio
async def test_a_user_decision_by_name_applies_to_the_signed_in_user_and_to_logins(
    tmp_path: Any,
) -> None:
    """Incidents and admins name users as they sign in; a token carries the user's id.
    A ban on the name refuses the user's authenticated requests and their logins (read
    from the app's user store while user decisions are in force); others pass."""
    from examples.app import create_app

    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(CLIENT, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        tokens = {}
        for name in ("erin", "frank"):
            creds = {"username": name, "password": "staple-horse-battery-9"}
            assert (await client.post("/signup", json=creds)).status_code == 201
            login = await client.post("/login", json=creds)
            tokens[name] = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/me", headers=tokens["erin"])).status_code == 200
        await app.state.pynomaly_security.decisions.add("user", "erin", "ban", reason="test")
        me = await client.get("/me", headers=tokens["erin"])
        again = await client.post(
            "/login", json={"username": "Erin", "password": "staple-horse-battery-9"}
        )
        other = await client.get("/me", headers=tokens["frank"])
    assert me.status_code == 403
    assert again.status_code == 403
    assert other.status_code == 200
