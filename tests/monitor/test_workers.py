"""The example app under ``uvicorn --workers 4``: alerts, acknowledgement, user
activity and ``/api/security/status`` agree whichever worker answers (issue 13,
item 5), with the monitor's state in Redis (the store of ``REDIS_URL``), in
PostgreSQL and in one SQLite file (``STATE_URL``; the lockout's counts stay in
Redis). Each request opens a fresh connection, so the kernel spreads them over
the workers; the answers record which worker gave them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from pynomaly_security.crypto import generate_master_key
from tests._uvicorn import uvicorn_workers

WORKERS = 4
ADMIN_KEY = "test-admin-key-0123456789abcdef-workers"
ADMIN = {"X-API-Key": ADMIN_KEY}
AGREEING_ANSWERS = 16
# Background flushes: every worker adds its counts and activity rows to Redis
# within about a second; polled with a bounded number of tries, never timed.
TRIES = 400


def serve_example(env: Mapping[str, str], tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    """``uvicorn --workers 4`` serving the example app with ``env`` added to the settings."""
    env = {
        "PYNOMALY_SECURITY__ADMIN_API_KEY": ADMIN_KEY,
        "PYNOMALY_MASTER_KEY": generate_master_key(),  # one key: tokens valid on every worker
        "PYNOMALY_SECURITY__ENABLE_AUDIT_LOGGING": "false",
        "PYNOMALY_SECURITY__AUDIT_DB_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "PYNOMALY_SECURITY__SQLI_EDGE_MODE": "block",  # the attacks below are SQL injection
        **env,
    }
    return uvicorn_workers(
        "example_workers_app:app",
        Path(__file__).parent,
        workers=WORKERS,
        env=env,
        log_path=tmp_path / "uvicorn.log",
        ready_workers=WORKERS,
        worker_of=lambda response: response.headers["x-test-worker"],
        cwd=tmp_path,
    )


@pytest.fixture
def example_on_four_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    """The example app on four workers, every kind of state in the test's Redis database."""
    with serve_example({"PYNOMALY_SECURITY__REDIS_URL": redis_db}, tmp_path) as base:
        yield base


@pytest.fixture
def example_on_postgres_state(redis_db: str, postgres_schema: str, tmp_path: Path) -> Iterator[str]:
    """The example app on four workers, the monitor's state in PostgreSQL (a schema of
    the test's own), the lockout's counts and the detectors' state in Redis."""
    env = {
        "PYNOMALY_SECURITY__REDIS_URL": redis_db,
        "PYNOMALY_SECURITY__STATE_URL": postgres_schema,
    }
    with serve_example(env, tmp_path) as base:
        yield base


def _get(base: str, path: str, **kwargs: Any) -> httpx.Response:
    # Connection: close and a new client each time: the next request may reach another worker.
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return httpx.get(base + path, headers=headers, timeout=30, **kwargs)


def _post(base: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return httpx.post(base + path, headers=headers, timeout=30, **kwargs)


def _agree(base: str, path: str, view: Callable[[Any], Any], expected: Any) -> set[str]:
    """Poll ``path`` until it shows ``expected`` (the workers' background flushes),
    then ask it AGREEING_ANSWERS more times: every answer, from whichever worker,
    must show the same. Returns the workers that answered."""
    last: Any = None
    for _ in range(TRIES):
        answer = _get(base, path, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        last = view(answer.json())
        if last == expected:
            break
        time.sleep(0.05)
    assert last == expected, path
    workers: set[str] = set()
    for _ in range(AGREEING_ANSWERS):
        answer = _get(base, path, headers=ADMIN)
        assert view(answer.json()) == expected, (path, answer.headers["x-test-worker"])
        workers.add(answer.headers["x-test-worker"])
    return workers


def _status_view(status: dict[str, Any]) -> dict[str, Any]:
    # `running` and `queue_depth` are each worker's own; everything else is shared.
    return {k: v for k, v in status.items() if k not in ("running", "queue_depth")}


@pytest.mark.slow
@pytest.mark.redis
def test_alerts_activity_and_status_agree_on_every_worker(example_on_four_workers: str) -> None:
    """Seven failed sign-ins lock alice (one brute_force alert, from the lockout's
    event), eight injection attempts raise one injection alert (one cool-down across
    workers), bob signs in and /me answers him twelve times: every worker then lists
    the same alerts, counts and activity; an acknowledgement on one worker is seen on all."""
    check_agreement(example_on_four_workers)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_every_worker_agrees_with_the_state_in_postgres(
    example_on_postgres_state: str, redis_db: str, postgres_schema: str
) -> None:
    """The same scenario with STATE_URL on PostgreSQL: every worker agrees, and the
    alerts, activity and counters are PostgreSQL's rows, none of them in Redis."""
    check_agreement(example_on_postgres_state)

    async def rows() -> tuple[dict[str, int], dict[str, int], int]:
        conn = await asyncpg.connect(postgres_schema)
        try:
            documents = await conn.fetch(
                "SELECT collection, COUNT(*) FROM pns_documents GROUP BY collection"
            )
            tallies = await conn.fetch(
                "SELECT field, value FROM pns_tallies WHERE name = 'monitor'"
            )
            streams = await conn.fetchval("SELECT COUNT(*) FROM pns_log_streams")
        finally:
            await conn.close()
        return dict(documents), dict(tallies), streams

    documents, tallies, streams = asyncio.run(rows())
    # The metrics' series (issue 20): one document per worker and minute, next to the alerts.
    assert documents.pop("metrics_minutes", 0) >= 1
    assert documents == {"alerts": 2}
    assert tallies["requests"] == 12 and tallies["lockouts"] == 1
    assert streams >= 2  # alice, bob (and the addresses of anonymous requests)
    client = redis.Redis.from_url(redis_db)
    try:
        assert [k for k in client.scan_iter("pns:*") if k.split(b":")[1] in MONITOR_KEYS] == []
    finally:
        client.close()


@pytest.fixture
def example_on_sqlite_state(redis_db: str, tmp_path: Path) -> Iterator[str]:
    """The example app on four workers, the monitor's state in one SQLite file."""
    env = {
        "PYNOMALY_SECURITY__REDIS_URL": redis_db,
        "PYNOMALY_SECURITY__STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    with serve_example(env, tmp_path) as base:
        yield base


@pytest.mark.slow
@pytest.mark.redis
def test_every_worker_agrees_with_the_state_in_one_sqlite_file(
    example_on_sqlite_state: str,
) -> None:
    """The workers of one host share a SQLite state file (each its own connection,
    writes serialized by the file's lock): the same scenario agrees on every worker."""
    check_agreement(example_on_sqlite_state)


# What the monitor's state is called in Redis (storage/redis.py: doc:, log:, tally:).
MONITOR_KEYS = (b"doc", b"log", b"tally")


def check_agreement(base: str) -> None:
    """The scenario of the four-worker tests, on the server at ``base``."""
    answered: set[str] = set()

    for _ in range(7):
        bad = _post(base, "/login", json={"username": "alice", "password": "wrong-password"})
        assert bad.status_code in (401, 429), bad.text
        answered.add(bad.headers["x-test-worker"])
    for _ in range(8):
        attack = _get(base, "/search", params={"q": "' OR 1=1 UNION SELECT password FROM users--"})
        assert attack.status_code == 403, attack.text
        answered.add(attack.headers["x-test-worker"])
    login = _post(base, "/login", json={"username": "bob", "password": "builder-2024"})
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    # The demo's users live in each worker's memory (examples/app.py): bob's token is
    # valid on the worker that signed him in, so /me is asked until it answered twelve times.
    user_id, answers = None, 0
    for _ in range(TRIES):
        me = _get(base, "/me", headers=bearer)
        assert me.status_code in (200, 401), me.text
        answered.add(me.headers["x-test-worker"])
        if me.status_code == 200:
            user_id, answers = me.json()["user_id"], answers + 1
            if answers == 12:
                break
    assert answers == 12
    assert len(answered) >= 2, "the requests all reached one worker"

    alerts = _agree(
        base,
        "/api/security/alerts",
        lambda body: sorted(a["alert_type"] for a in body["alerts"]),
        ["brute_force", "injection_attack"],
    )
    [locked] = [
        a
        for a in _get(base, "/api/security/alerts", headers=ADMIN).json()["alerts"]
        if a["alert_type"] == "brute_force"
    ]
    assert locked["user_id"] == "alice" and locked["threat_level"] == "high"

    expected_status = {
        "monitoring_enabled": True,
        "active_alerts_count": 2,
        "recent_alerts": {"LOW": 0, "MEDIUM": 0, "HIGH": 2, "CRITICAL": 0},
        "recent_metrics": {
            "failed_logins": 5,
            "successful_logins": 1,
            "injection_attempts": 8,
            "blocked_requests": 8,
            "requests": 12,
            "lockouts": 1,
            "dropped_events": 0,
        },
        "detectors": ["brute_force", "anomalous_access", "injection", "correlation"],
        "sqli_edge": "block",  # SQLI_EDGE_MODE=block in serve_example's environment
    }
    status = _agree(base, "/api/security/status", _status_view, expected_status)

    activity = _agree(
        base,
        f"/api/security/users/{user_id}/activity",
        lambda body: [(a["method"], a["path"], a["status_code"]) for a in body["activities"]],
        [("GET", "/me", 200)] * 12,
    )
    # alice's seven attempts, answered by several workers, in one log, newest first.
    attempts = _agree(
        base,
        "/api/security/users/alice/activity",
        lambda body: [(a["path"], a["status_code"]) for a in body["activities"]],
        [("/login", 429)] * 2 + [("/login", 401)] * 5,
    )

    # Acknowledge the injection alert on one worker; every worker then sees it
    # acknowledged, with the one time the first acknowledgement set.
    [injection] = [
        a
        for a in _get(base, "/api/security/alerts", headers=ADMIN).json()["alerts"]
        if a["alert_type"] == "injection_attack"
    ]
    first = _post(base, f"/api/security/alerts/{injection['alert_id']}/acknowledge", headers=ADMIN)
    assert first.status_code == 200 and first.json()["acknowledged"] is True
    acked_by: set[str] = set()
    for _ in range(AGREEING_ANSWERS):
        again = _post(
            base, f"/api/security/alerts/{injection['alert_id']}/acknowledge", headers=ADMIN
        )
        assert again.status_code == 200
        assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
        acked_by.add(again.headers["x-test-worker"])
    after = _agree(
        base,
        "/api/security/alerts",
        lambda body: [a["alert_type"] for a in body["alerts"]],
        ["brute_force"],
    )
    expected_status |= {
        "active_alerts_count": 1,
        "recent_alerts": {"LOW": 0, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 0},
    }
    status |= _agree(base, "/api/security/status", _status_view, expected_status)

    every = alerts | status | activity | attempts | acked_by | after
    assert len(every) >= 3, f"only {len(every)} workers answered the admin requests"
