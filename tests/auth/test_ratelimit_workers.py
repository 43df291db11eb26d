"""A limit of N holds across 4 uvicorn worker processes sharing Redis (not 4N)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._uvicorn import uvicorn_workers

LIMIT = 20
REQUESTS = 60


@pytest.fixture
def four_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    """uvicorn --workers 4 on a free port, stopped (with its workers) afterwards."""
    # Ready when several workers answer (health is exempt from the limit).
    with uvicorn_workers(
        "ratelimit_workers_app:app",
        Path(__file__).parent,
        workers=4,
        env={"PNS_TEST_REDIS_URL": redis_db, "PNS_TEST_LIMIT": f"{LIMIT}/day"},
        log_path=tmp_path / "uvicorn.log",
    ) as base:
        yield base


@pytest.mark.slow
@pytest.mark.redis
def test_limit_holds_across_four_workers(four_workers: str) -> None:
    """60 requests on fresh connections, spread over 4 workers: exactly 20 pass."""
    statuses: list[int] = []
    served_by: set[str] = set()
    for _ in range(REQUESTS):
        # A new connection per request so the kernel spreads them over workers.
        response = httpx.get(four_workers + "/", headers={"Connection": "close"})
        statuses.append(response.status_code)
        if response.status_code == 200:
            served_by.add(response.text)
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    # A range: which worker accepts a connection is the kernel's choice.
    assert 2 <= len(served_by) <= 4, "requests were not spread over several workers"
