"""RateLimitMiddleware on real apps: limits, keys, headers, failure policy, start-up warning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Scope

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.middleware.ratelimit import (
    MEMORY_STORE_WITH_WORKERS,
    RateLimitMiddleware,
    worker_count,
)
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import Store, create_store
from pynomaly_security.storage.memory import MemoryStore
from tests.storage._redis_server import free_port, run_redis_server

MakeClient = Callable[..., httpx.AsyncClient]


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def make_app(**options: Any) -> Starlette:
    routes = [Route(p, ok, methods=["GET", "POST"]) for p in ("/", "/login", "/health", "/a/b")]
    return Starlette(routes=routes, middleware=[Middleware(RateLimitMiddleware, **options)])


# "N/day" limits: a window edge inside a test would let the sliding window
# grant one extra hit, and there is no day boundary during a test run.


@pytest.mark.anyio
async def test_limit_then_429_with_headers(make_client: MakeClient) -> None:
    """N requests pass with RateLimit headers; the next gets 429 and Retry-After."""
    async with make_client(make_app(limits=["3/day"])) as client:
        answers = [await client.get("/") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"3-per-1-day";q=3;w=86400'
    assert answers[0].headers["RateLimit"].startswith('"3-per-1-day";r=2;t=')
    assert answers[2].headers["RateLimit"].startswith('"3-per-1-day";r=0;t=')
    refused = answers[3]
    # A range: the window is the real clock's day, so the seconds left depend on the hour.
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    assert refused.json() == {"detail": "rate limit exceeded"}


@pytest.mark.anyio
async def test_several_limits_tightest_reported(make_client: MakeClient) -> None:
    """With two limits the policy lists both and RateLimit reports the tighter one."""
    async with make_client(make_app(limits=["2/day", "10/day"])) as client:
        answers = [await client.get("/") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    policy = answers[0].headers["RateLimit-Policy"]
    assert policy == '"2-per-1-day";q=2;w=86400, "10-per-1-day";q=10;w=86400'
    assert answers[1].headers["RateLimit"].startswith('"2-per-1-day";r=0;')


@pytest.mark.anyio
async def test_route_limits_and_exemptions(make_client: MakeClient) -> None:
    """A route's own limit replaces the default and counts apart; exempt paths are free."""
    app = make_app(
        limits=["2/day"],
        route_limits={"/login": ["1/day"], "/a/*": ["5/day"]},
        exempt_paths=["/health"],
    )
    async with make_client(app) as client:
        assert [(await client.post("/login")).status_code for _ in range(2)] == [200, 429]
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 429]
        assert (await client.get("/a/b")).status_code == 200
        health = [await client.get("/health") for _ in range(10)]
    assert {r.status_code for r in health} == {200}
    assert "RateLimit" not in health[0].headers


@pytest.mark.anyio
async def test_spoofed_forwarded_for_changes_nothing() -> None:
    """An untrusted client rotating X-Forwarded-For is still one client."""
    app = make_app(limits=["2/day"], resolver=ClientIPResolver(["10.0.0.0/8"]))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        codes = [
            (await client.get("/", headers={"X-Forwarded-For": f"6.6.6.{i}"})).status_code
            for i in range(3)
        ]
    assert codes == [200, 200, 429]


@pytest.mark.anyio
async def test_clients_behind_trusted_proxy_count_apart() -> None:
    """Behind a trusted proxy each real client has its own budget."""
    app = make_app(limits=["1/day"], resolver=ClientIPResolver(["10.0.0.0/8"]))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
        second = await client.get("/", headers={"X-Forwarded-For": "198.51.100.2"})
        again = await client.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
    assert (first.status_code, second.status_code, again.status_code) == (200, 200, 429)


@pytest.mark.anyio
async def test_api_key_budget_and_no_raw_key_stored(make_client: MakeClient) -> None:
    """Keyed by API key, each key has a budget and the store never holds the key."""
    store = MemoryStore()
    async with make_client(make_app(store=store, limits=["1/day"], key="api_key")) as client:
        a1 = await client.get("/", headers={"X-API-Key": "secret-key-a"})
        b1 = await client.get("/", headers={"X-API-Key": "secret-key-b"})
        a2 = await client.get("/", headers={"X-API-Key": "secret-key-a"})
    assert (a1.status_code, b1.status_code, a2.status_code) == (200, 200, 429)
    assert not any("secret-key" in key for key in store._data)


@pytest.mark.anyio
async def test_user_key(make_client: MakeClient) -> None:
    """Keyed by user, two users from one IP have separate budgets."""

    def user_of(scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-user":
                return str(value.decode())
        return None

    async with make_client(make_app(limits=["1/day"], key="user", user_key=user_of)) as client:
        codes = [
            (await client.get("/", headers={"X-User": user})).status_code
            for user in ("alice", "bob", "alice")
        ]
    assert codes == [200, 200, 429]


@pytest.mark.anyio
async def test_route_key_is_one_budget(make_client: MakeClient) -> None:
    """Keyed by route, every client shares the route's budget."""
    app = make_app(limits=["2/day"], key="route")
    codes = []
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        transport = httpx.ASGITransport(app=app, client=(ip, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            codes.append((await client.get("/")).status_code)
    assert codes == [200, 200, 429]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("fail_open", 200, id="fail-open"),
        pytest.param("fail_closed", 503, id="fail-closed"),
    ],
)
async def test_store_down(make_client: MakeClient, policy: str, expected: int) -> None:
    """With the store unreachable the policy decides: pass through, or 503."""
    store = create_store(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    try:
        async with make_client(make_app(store=store, failure_policy=policy)) as client:
            response = await client.get("/")
    finally:
        await store.aclose()
    assert response.status_code == expected


@pytest.mark.anyio
@pytest.mark.redis
async def test_two_instances_share_redis(redis_url: str, make_client: MakeClient) -> None:
    """Two app instances (two workers' worth) on one Redis share one budget."""
    stores: list[Store] = [create_store(redis_url, key_prefix="pns-rl:") for _ in range(2)]
    apps = [make_app(store=s, limits=["3/day"]) for s in stores]
    codes = []
    try:
        for i in range(5):
            async with make_client(apps[i % 2]) as client:
                codes.append((await client.get("/")).status_code)
    finally:
        for s in stores:
            await s.aclose()
    assert codes == [200, 200, 200, 429, 429]


def test_memory_store_with_workers_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting with an in-memory store under several workers logs a warning."""
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with structlog.testing.capture_logs() as logs, TestClient(make_app()):
        pass
    assert next(e for e in logs if e["event"] == MEMORY_STORE_WITH_WORKERS)["workers"] == 4


def test_single_worker_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker with an in-memory store is fine and stays quiet."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setattr("sys.argv", ["app"])
    with structlog.testing.capture_logs() as logs, TestClient(make_app()):
        pass
    assert not [e for e in logs if e["event"] == MEMORY_STORE_WITH_WORKERS]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        pytest.param(["uvicorn", "app:app", "--workers", "4"], {}, 4, id="uvicorn-flag"),
        pytest.param(["gunicorn", "-w", "3", "app:app"], {}, 3, id="gunicorn-flag"),
        pytest.param(["uvicorn", "--workers=2"], {}, 2, id="equals-form"),
        pytest.param(["uvicorn"], {"WEB_CONCURRENCY": "5"}, 5, id="env"),
        pytest.param(["uvicorn", "app:app"], {}, 1, id="single"),
    ],
)
def test_worker_count(argv: list[str], env: dict[str, str], expected: int) -> None:
    """Worker count is read from the usual flags and WEB_CONCURRENCY."""
    assert worker_count(argv, env) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"limits": ["lots"]}, "rate_limits", id="bad-limit"),
        pytest.param({"route_limits": {"/x": ["often"]}}, "/x", id="bad-route-limit"),
        pytest.param({"key": "cookie"}, "cookie", id="bad-key"),
        pytest.param({"failure_policy": "shrug"}, "shrug", id="bad-policy"),
    ],
)
def test_bad_configuration(options: dict[str, object], message: str) -> None:
    """Invalid options fail at construction and name what is wrong."""
    with pytest.raises(ConfigurationError, match=message):
        RateLimitMiddleware(ok, **options)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_from_settings(make_client: MakeClient) -> None:
    """Settings declare the default and per-route limits."""
    settings = SecuritySettings(
        _env_file=None, rate_limits=["5/day"], route_rate_limits={"/login": ["1/day"]}
    )
    app = Starlette(routes=[Route("/login", ok, methods=["POST"])])
    limited = RateLimitMiddleware.from_settings(app, settings)
    async with make_client(limited) as client:
        codes = [(await client.post("/login")).status_code for _ in range(2)]
    assert codes == [200, 429]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("fail_open", 200, id="fail-open"),
        pytest.param("fail_closed", 503, id="fail-closed"),
    ],
)
async def test_redis_stopped_mid_run(make_client: MakeClient, policy: str, expected: int) -> None:
    """Limits hold while Redis runs; when it stops mid-run the policy decides."""
    with run_redis_server() as (url, proc):
        store = create_store(url, socket_timeout=0.5)
        try:
            async with make_client(
                make_app(store=store, limits=["2/day"], failure_policy=policy)
            ) as client:
                codes = [(await client.get("/")).status_code for _ in range(3)]
                proc.terminate()
                proc.wait(timeout=10)
                after = await client.get("/")
        finally:
            await store.aclose()
    assert codes == [200, 200, 429]
    assert after.status_code == expected
