"""A dead Redis surfaces as StorageError, and the policy helper says what to do."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.storage import create_store, failure_policy
from tests.storage._redis_server import free_port, run_redis_server


@pytest.mark.anyio
async def test_nothing_listening_raises_storage_error() -> None:
    """Every operation against a Redis that is not there raises StorageError fast."""
    store = create_store(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    try:
        with pytest.raises(StorageError):
            await store.incr("k", 10)
        with pytest.raises(StorageError):
            await store.acquire_sliding_window("k", 1, 10)
        with pytest.raises(StorageError):
            await store.scan("k")
        assert await store.healthcheck() is False
    finally:
        await store.aclose()


@pytest.fixture
def throwaway_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our own redis-server on a free port, so stopping it touches nobody else."""
    with run_redis_server() as server:
        yield server


@pytest.mark.anyio
async def test_redis_stopped_mid_run(throwaway_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Working calls turn into StorageError once the server goes away mid-run."""
    url, proc = throwaway_redis
    store = create_store(url, socket_timeout=0.5)
    try:
        assert await store.acquire_sliding_window("k", 5, 60) is True
        proc.terminate()
        proc.wait(timeout=10)
        with pytest.raises(StorageError):
            await store.acquire_sliding_window("k", 5, 60)
    finally:
        await store.aclose()


def test_policy_defaults_and_overrides() -> None:
    """Rate limits fail open, security decisions fail closed, unless overridden."""
    assert failure_policy({}, "rate_limit") == "fail_open"
    assert failure_policy({}, "tokens") == "fail_closed"
    assert failure_policy({"rate_limit": "fail_closed"}, "rate_limit") == "fail_closed"


@pytest.mark.parametrize(
    ("overrides", "feature", "message"),
    [
        pytest.param({}, "coffee", "unknown store feature", id="unknown-feature"),
        pytest.param({"lockout": "maybe"}, "lockout", "fail_open", id="bad-value"),
    ],
)
def test_policy_errors(overrides: dict[str, str], feature: str, message: str) -> None:
    """Unknown features and values are configuration errors naming the choices."""
    with pytest.raises(ConfigurationError, match=message):
        failure_policy(overrides, feature)


@pytest.mark.parametrize("url", ["mongodb://x", "memory", "http://x"])
def test_unknown_scheme(url: str) -> None:
    """create_store refuses schemes it does not know."""
    with pytest.raises(ConfigurationError, match="unknown store URL scheme"):
        create_store(url)
