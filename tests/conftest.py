"""Shared test fixtures.

Services (Redis, PostgreSQL) and system programs (Chromium, wrk) are real.
Where one is missing a test skips with the reason, except under ``CI=true``,
where it fails: CI installs and starts everything it needs.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

IN_CI = os.environ.get("CI", "").lower() == "true"

# The suite is about the package's defaults and what each test sets itself: a
# developer's exported PYNOMALY_SECURITY__* or PYNOMALY_MASTER_KEY must not change
# it. Cleared at import, before any fixture (session-scoped ones included) reads
# the environment and before any server the tests start inherits it.
for _name in [name for name in os.environ if name.startswith("PYNOMALY_")]:
    del os.environ[_name]
# The compliance validator's start-up run probes the app and commits a record to the
# audit trail in the background; tests of other parts count their records, alerts and
# rate-limit hits exactly. Its own tests switch it on (compliance_enabled=True, which a
# keyword argument does over this), and so do servers given it in their environment.
os.environ["PYNOMALY_SECURITY__COMPLIANCE_ENABLED"] = "false"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI=true) when a real dependency is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_redis() -> str:
    require(_port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


def require_postgres() -> str:
    require(_port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    return POSTGRES_URL


SHARED = Path(os.environ.get("SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
"""The project's ``../shared`` data (corpora, datasets); ``SHARED_DIR`` names another place."""


def require_shared(*parts: str) -> Path:
    """A path under ``../shared``: skips (locally) or fails (under CI=true) when missing."""
    path = SHARED.joinpath(*parts)
    require(path.exists(), f"the shared data {'/'.join(parts)} is not at {path}")
    return path


def require_program(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (apt-get install {name})")
    assert path is not None
    return path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_client() -> Callable[[ASGIApp], httpx.AsyncClient]:
    """Build an httpx client that talks to an ASGI app in-process."""

    def _make(app: ASGIApp, **kwargs: object) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        kwargs.setdefault("base_url", "http://testserver")
        return httpx.AsyncClient(transport=transport, **kwargs)  # type: ignore[arg-type]

    return _make


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A real Redis database (15), flushed before and after the test."""
    url = require_redis()
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def postgres_url() -> str:
    return require_postgres()


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """The real PostgreSQL with a schema of the test's own (dropped after it): the URL
    sets ``search_path``, so every table the test's code creates lands there."""
    import asyncio
    import secrets

    import asyncpg

    url = require_postgres()
    schema = f"test_{secrets.token_hex(6)}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


ALL_STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@pytest.fixture
def redis_db() -> Iterator[str]:
    """The real Redis (DB 15), flushed around the test, for sync code and fixtures
    (``redis_url`` is the async one); required under CI=true."""
    url = require_redis()
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(params=ALL_STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """memory://, or the real Redis (DB 15) flushed around the test."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_db"))
