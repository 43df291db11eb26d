"""Correlation rules through the example app (issue 16, item 1): a burst of failed
sign-ins from one address, then a success from it, raises exactly one
``brute_force_success`` alert (and one ``brute_force`` for the burst) on
``/api/security/alerts``: in process, and on Redis with two uvicorn workers that
each see part of the burst."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests._example import running_example
from tests._uvicorn import uvicorn_workers
from tests.monitor.test_workers import ADMIN, ADMIN_KEY, TRIES, _get, _post

# Twelve failures across three names: four each stays under the lockout's five per
# (user, address), so every attempt is answered 401 and counted.
BURST = [name for _ in range(4) for name in ("alice", "bob", "mallory")]
EXPECTED = {"correlation:brute_force": 1, "correlation:brute_force_success": 1}


def correlation_alerts(body: dict[str, Any]) -> Counter[str]:
    return Counter(
        a["alert_type"] for a in body["alerts"] if a["alert_type"].startswith("correlation:")
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_example(tmp_path, ADMIN_KEY) as application:
        yield application


@pytest.mark.anyio
async def test_burst_then_success_raises_one_alert_in_process(app: FastAPI) -> None:
    """Twelve failed sign-ins, then alice's success, from one address: one
    ``brute_force_success`` alert (critical, the address and alice as indicators, the
    playbook passed along), one ``brute_force``; more successes add nothing."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 40000))
    monitor = app.state.pynomaly_security.security_monitor
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for name in BURST:
            bad = await client.post("/login", json={"username": name, "password": "wrong-1234"})
            assert bad.status_code == 401, bad.text
        for _ in range(3):
            good = await client.post(
                "/login", json={"username": "alice", "password": "wonderland-2024"}
            )
            assert good.status_code == 200, good.text
        await monitor.flush(timeout=10.0)
        body = (await client.get("/api/security/alerts", headers=ADMIN)).json()
    assert correlation_alerts(body) == EXPECTED
    [alert] = [a for a in body["alerts"] if a["alert_type"] == "correlation:brute_force_success"]
    assert alert["threat_level"] == "critical" and alert["source_ip"] == "203.0.113.50"
    assert alert["indicators"]["user"] == ["alice"]
    assert alert["details"]["playbook"] == "account_takeover_response"
    assert alert["details"]["response"] == "dry_run"


@pytest.mark.anyio
async def test_scanner_sweep_and_token_reuse_in_process(app: FastAPI) -> None:
    """Thirty 404s from one address raise one ``scanner_sweep`` alert (any client's 404
    is reported); a spent refresh token used again raises one ``token_reuse``."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.77", 40000))
    monitor = app.state.pynomaly_security.security_monitor
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for n in range(35):
            assert (await client.get(f"/wp-admin/setup-{n}.php")).status_code == 404
        tokens = (
            await client.post("/login", json={"username": "bob", "password": "builder-2024"})
        ).json()
        spent = {"refresh_token": tokens["refresh_token"]}
        assert (await client.post("/refresh", json=spent)).status_code == 200
        assert (await client.post("/refresh", json=spent)).status_code == 401
        await monitor.flush(timeout=10.0)
        body = (await client.get("/api/security/alerts", headers=ADMIN)).json()
    assert correlation_alerts(body) == {
        "correlation:scanner_sweep": 1,
        "correlation:token_reuse": 1,
    }


@pytest.fixture
def example_on_two_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    env = {
        "PYNOMALY_SECURITY__ADMIN_API_KEY": ADMIN_KEY,
        "PYNOMALY_SECURITY__ENABLE_AUDIT_LOGGING": "false",
        "PYNOMALY_SECURITY__REDIS_URL": redis_db,
    }
    from pynomaly_security.crypto import generate_master_key

    env["PYNOMALY_MASTER_KEY"] = generate_master_key()
    with uvicorn_workers(
        "example_workers_app:app",
        Path(__file__).parent,
        workers=2,
        env=env,
        log_path=tmp_path / "uvicorn.log",
        ready_workers=2,
        worker_of=lambda response: response.headers["x-test-worker"],
        cwd=tmp_path,
    ) as base:
        yield base


@pytest.mark.slow
@pytest.mark.redis
def test_burst_across_two_workers_raises_one_alert(example_on_two_workers: str) -> None:
    """The same burst, each request on a new connection so both workers get part of
    it, then alice's success: each worker counts in Redis, so the two see one attacker
    and raise one ``brute_force_success`` alert between them."""
    base = example_on_two_workers
    answered: set[str] = set()
    for name in BURST:
        bad = _post(base, "/login", json={"username": name, "password": "wrong-1234"})
        assert bad.status_code == 401, bad.text
        answered.add(bad.headers["x-test-worker"])
    assert len(answered) == 2, "the burst reached one worker only"
    for _ in range(3):
        good = _post(base, "/login", json={"username": "alice", "password": "wonderland-2024"})
        assert good.status_code == 200, good.text
    seen: Counter[str] = Counter()
    for _ in range(TRIES):  # the workers' monitors analyse in the background
        seen = correlation_alerts(_get(base, "/api/security/alerts", headers=ADMIN).json())
        if seen == EXPECTED:
            break
        time.sleep(0.05)
    assert seen == EXPECTED
    for _ in range(8):  # and it stays one, whichever worker answers
        answer = _get(base, "/api/security/alerts", headers=ADMIN)
        assert correlation_alerts(answer.json()) == EXPECTED
