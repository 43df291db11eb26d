"""RouteRateLimit: limits declared on a route in code."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from pynomaly_security.auth.route_limits import RouteRateLimit
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.memory import MemoryStore


def make_app(**options: object) -> FastAPI:
    app = FastAPI()
    limit = RouteRateLimit("2/day", **options)  # type: ignore[arg-type]

    @app.post("/reset/{user}", dependencies=[Depends(limit)])
    async def reset(user: str) -> dict[str, str]:
        return {"reset": user}

    @app.get("/free")
    async def free() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.mark.anyio
async def test_route_limit_per_client(make_client: object) -> None:
    """The route allows its limit per client, whatever its path parameters, then 429."""
    app = make_app(store=MemoryStore())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        codes = [(await client.post(f"/reset/u{i}")).status_code for i in range(3)]
        refused = await client.post("/reset/u9")
        assert (await client.get("/free")).status_code == 200
    assert codes == [200, 200, 429]
    # A range: the window is the real clock's day, so the seconds left depend on the hour.
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    assert refused.headers["RateLimit-Policy"] == '"2-per-1-day";q=2;w=86400'
    other = httpx.ASGITransport(app=app, client=("203.0.113.2", 1))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as client:
        assert (await client.post("/reset/u1")).status_code == 200


@pytest.mark.anyio
async def test_uses_the_stack_store() -> None:
    """Without a store it counts in the store setup_security_middleware made."""
    from pynomaly_security import setup_security_middleware

    app = make_app()
    settings = SecuritySettings(_env_file=None, development_mode=True, enable_audit_logging=False)
    setup_security_middleware(app, settings=settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            codes = [(await client.post("/reset/a")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.anyio
async def test_no_store_is_a_configuration_error() -> None:
    """A bare app without the stack and without a store is told how to fix it."""
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(ConfigurationError, match="setup_security_middleware"):
            await client.post("/reset/a")


@pytest.mark.anyio
async def test_store_down_policies() -> None:
    """Store down: fail_open serves the route, fail_closed answers 503."""
    from pynomaly_security.storage import create_store

    store = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    try:
        for policy, expected in (("fail_open", 200), ("fail_closed", 503)):
            app = make_app(store=store, failure_policy=policy)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as client:
                assert (await client.post("/reset/a")).status_code == expected
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("limit", "key"),
    [pytest.param("often", "ip", id="bad-limit"), pytest.param("1/day", "cookie", id="bad-key")],
)
def test_bad_configuration(limit: str, key: str) -> None:
    """Bad limits and keys fail when the dependency is built."""
    with pytest.raises(ConfigurationError):
        RouteRateLimit(limit, key=key)  # type: ignore[arg-type]
