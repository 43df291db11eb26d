"""Automatic containment end to end: the example app under ``uvicorn --workers 2`` on
Redis (issue 16, item 7). A burst of failed sign-ins from 127.0.0.2, then a success
from it, opens exactly one incident; its playbook (``brute_force_success`` turned
``on``) bans the address and both workers refuse it; the timeline shows each step and
the audit verifier (``audit verify``) confirms the trail; reverting the ban lets the
address back in on both. Polled with a bounded number of tries, never timed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.app import DEMO_USERS
from pynomaly_security.crypto import generate_master_key
from tests._uvicorn import ROOT, uvicorn_workers

KEY = "test-admin-key-0123456789abcdef-playbooks"
ADMIN = {"X-API-Key": KEY}
ATTACKER = "127.0.0.2"
TRIES = 400
# Four each of three names stays under the lockout's five per (user, address): all 401.
BURST = [name for _ in range(4) for name in ("alice", "bob", "mallory")]


@pytest.fixture
def env(redis_db: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PYNOMALY_SECURITY__ADMIN_API_KEY": KEY,
        "PYNOMALY_MASTER_KEY": generate_master_key(),
        "PYNOMALY_SECURITY__REDIS_URL": redis_db,
        "PYNOMALY_SECURITY__AUDIT_DB_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "PYNOMALY_SECURITY__CORRELATION_RESPONSES": '{"brute_force_success": "on"}',
        # The burst's own rule only as the step of brute_force_success: one incident.
        "PYNOMALY_SECURITY__CORRELATION_DISABLED_RULES": "brute_force",
        "PYNOMALY_SECURITY__MFA_RATE_LIMITS": '["1000/minute"]',
        "PYNOMALY_SECURITY__MFA_ACCOUNT_RATE_LIMITS": '["1000/minute"]',
    }


@pytest.fixture
def two_workers(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with uvicorn_workers(
        "example_workers_app:app",
        Path(__file__).parents[1] / "monitor",
        workers=2,
        env=env,
        log_path=tmp_path / "uvicorn.log",
        ready_workers=2,
        worker_of=lambda response: response.headers["x-test-worker"],
        cwd=tmp_path,
    ) as base:
        yield base


def _send(method: str, base: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return httpx.request(method, base + path, headers=headers, timeout=30, **kwargs)


def _attacker(method: str, base: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=ATTACKER)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.request(method, base + path, headers={"Connection": "close"}, **kwargs)


def _until_both(base: str, status: int) -> None:
    """Attacker requests until each worker answered ``status``, never going back."""
    seen: set[str] = set()
    for _ in range(TRIES):
        answer = _attacker("GET", base, "/search", params={"q": "x"})
        worker = answer.headers["x-test-worker"]
        if answer.status_code == status:
            seen.add(worker)
            if len(seen) == 2:
                return
        else:
            assert worker not in seen, f"worker {worker} went back to {answer.status_code}"
    pytest.fail(f"only {len(seen)} worker(s) answered {status}")


def _until(method: str, base: str, path: str, done: int, **kwargs: Any) -> httpx.Response:
    """Send until a worker answers ``done`` (a session lives in one worker's memory)."""
    for _ in range(TRIES):
        answer = _send(method, base, path, **kwargs)
        if answer.status_code == done:
            return answer
        assert answer.status_code == 401, answer.text
    pytest.fail(f"no worker answered {done} to {method} {path}")


@pytest.mark.slow
@pytest.mark.redis
def test_burst_then_success_is_contained_on_both_workers(
    two_workers: str, env: dict[str, str], tmp_path: Path
) -> None:
    """One incident, its ban enforced by both workers, every step on a timeline that
    verifies (and ``audit verify`` says OK), the revert serving the address again."""
    base = two_workers
    _until_both(base, 200)
    for name in BURST:
        bad = _attacker("POST", base, "/login", json={"username": name, "password": "wrong-1234"})
        assert bad.status_code == 401, bad.text
    good = _attacker(
        "POST", base, "/login", json={"username": "bob", "password": DEMO_USERS["bob"]}
    )
    assert good.status_code == 200, good.text
    _until_both(base, 403)

    incidents: list[dict[str, Any]] = []
    for _ in range(TRIES):  # the playbook's run finishes after its ban is in force
        incidents = _send("GET", base, "/api/security/incidents", headers=ADMIN).json()["incidents"]
        if incidents and incidents[0]["status"] == "contained":
            break
    [incident] = incidents
    assert incident["source"] == "correlation:brute_force_success"
    assert incident["observables"]["ips"] == [ATTACKER]
    timeline = _send(
        "GET", base, f"/api/security/incidents/{incident['incident_id']}/timeline", headers=ADMIN
    ).json()
    assert timeline["verified"] is True, timeline["verification"]
    steps = [
        (e["details"]["step"], e["details"]["status"])
        for e in timeline["entries"]
        if e["action"] == "playbook_step"
    ]
    assert steps[:3] == [
        ("ban_source", "done"),
        ("revoke_sessions", "done"),
        ("require_mfa", "done"),
    ]
    [ban] = [
        d
        for d in _send("GET", base, "/api/security/decisions", headers=ADMIN).json()["decisions"]
        if d["scope"] == "ip"
    ]
    assert ban["value"] == ATTACKER and ban["origin"] == "playbook:account_takeover_response"

    verify = subprocess.run(
        [sys.executable, "-m", "pynomaly_security", "audit", "verify"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout + verify.stderr

    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = _send("POST", base, "/login", json=creds)
    session = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    _until("POST", base, "/reauth", 200, json={"password": creds["password"]}, headers=session)
    _until("DELETE", base, f"/api/security/decisions/{ban['decision_id']}", 200, headers=session)
    _until_both(base, 200)
