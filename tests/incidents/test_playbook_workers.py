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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.app import DEMO_USERS
from tests._uvicorn import (
    LOOSE_MFA_LIMITS,
    ROOT,
    example_app_workers,
    example_env,
    send,
    until_both_answer,
)

KEY = "test-admin-key-0123456789abcdef-playbooks"
ADMIN = {"X-API-Key": KEY}
ATTACKER = "127.0.0.2"
TRIES = 400
# Four each of three names stays under the lockout's five per (user, address): all 401.
BURST = [name for _ in range(4) for name in ("alice", "bob", "mallory")]


@pytest.fixture
def env(redis_db: str, tmp_path: Path) -> dict[str, str]:
    return example_env(
        KEY,
        redis_db,
        tmp_path,
        correlation_responses='{"brute_force_success": "on"}',
        # The burst's own rule only as the step of brute_force_success: one incident.
        correlation_disabled_rules="brute_force",
        **LOOSE_MFA_LIMITS,
    )


@pytest.fixture
def two_workers(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with example_app_workers(env, tmp_path) as base:
        yield base




def _attacker(method: str, base: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=ATTACKER)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.request(method, base + path, headers={"Connection": "close"}, **kwargs)


def _until_both(base: str, status: int) -> None:
    """Attacker requests until each worker answered ``status``, never going back."""
    until_both_answer(lambda: _attacker("GET", base, "/search", params={"q": "x"}), status, TRIES)


def _until(method: str, base: str, path: str, done: int, **kwargs: Any) -> httpx.Response:
    """Send until a worker answers ``done`` (a session lives in one worker's memory)."""
    for _ in range(TRIES):
        answer = send(method, base, path, **kwargs)
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
        incidents = send("GET", base, "/api/security/incidents", headers=ADMIN).json()["incidents"]
        if incidents and incidents[0]["status"] == "contained":
            break
    [incident] = incidents
    assert incident["source"] == "correlation:brute_force_success"
    assert incident["observables"]["ips"] == [ATTACKER]
    timeline = send(
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
        for d in send("GET", base, "/api/security/decisions", headers=ADMIN).json()["decisions"]
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
    login = send("POST", base, "/login", json=creds)
    session = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    _until("POST", base, "/reauth", 200, json={"password": creds["password"]}, headers=session)
    _until("DELETE", base, f"/api/security/decisions/{ban['decision_id']}", 200, headers=session)
    _until_both(base, 200)


APPROVED_YAML = """
playbooks:
  - name: approved_ban
    steps:
      - id: ban_source
        action: decision
        params: {scope: ip, action: ban, ttl: 1h}
        approval: {approvers: [alice], ttl: 1s}
"""
APPROVAL_TTL = 1.0


@pytest.fixture
def two_workers_playbooks(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """Two workers whose playbooks include ``approved_ban``, its approval living 1 s."""
    (tmp_path / "playbooks.yaml").write_text(APPROVED_YAML)
    playbooks = {"PYNOMALY_SECURITY__PLAYBOOKS_FILE": str(tmp_path / "playbooks.yaml")}
    with example_app_workers({**env, **playbooks}, tmp_path) as base:
        yield base


def _session_per_worker(base: str) -> dict[str, dict[str, str]]:
    """Alice's re-authenticated session on each worker (a session lives in the memory
    of the worker that signed it in), by worker."""
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    sessions: dict[str, dict[str, str]] = {}
    for _ in range(TRIES):
        login = send("POST", base, "/login", json=creds)
        assert login.status_code == 200, login.text
        worker = login.headers["x-test-worker"]
        if worker not in sessions:
            headers = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
            again = {"password": creds["password"]}
            _until("POST", base, "/reauth", 200, json=again, headers=headers)
            sessions[worker] = headers
            if len(sessions) == 2:
                return sessions
    pytest.fail("alice was signed in by one worker only")


def _on_its_worker(method: str, base: str, path: str, session: dict[str, str]) -> httpx.Response:
    """Send with ``session`` until the worker that knows it answers (others say 401)."""
    for _ in range(TRIES):
        answer = send(method, base, path, headers=session)
        if answer.status_code != 401:
            return answer
    pytest.fail(f"no worker knew the session for {method} {path}")


def _decisions(base: str, value: str) -> list[dict[str, Any]]:
    listed = send("GET", base, "/api/security/decisions", headers=ADMIN).json()["decisions"]
    return [d for d in listed if d["value"] == value]


@pytest.mark.slow
@pytest.mark.redis
def test_dry_run_idempotent_step_revert_and_expired_approval_across_workers(
    two_workers_playbooks: str,
) -> None:
    """On two workers sharing Redis: a dry run through the admin API changes nothing
    (no decision; both workers serve the address; the incident stays ``new``); the
    same run from a session on each worker makes one decision (the second run is
    ``already_done``) that both workers enforce; the revert API lets the address back
    on both; an approval approved after its time-to-live is refused (409 ``expired``)
    and bans nothing. Waits are bounded loops on conditions, never timed assertions."""
    base = two_workers_playbooks
    _until_both(base, 200)
    made = send(
        "POST", base, "/api/security/incidents", headers=ADMIN,
        json={"title": "SQL Injection Attack", "observables": {"ips": [ATTACKER]}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    incident_id = made.json()["incident_id"]
    run_path = f"/api/security/incidents/{incident_id}/playbooks/sql_injection_response"

    planned_by: set[str] = set()
    for _ in range(TRIES):  # dry runs until each worker has planned one
        dry = send("POST", base, run_path + "?dry_run=true", headers=ADMIN)
        assert dry.status_code == 200 and dry.json()["status"] == "dry_run", dry.text
        planned_by.add(dry.headers["x-test-worker"])
        if len(planned_by) == 2:
            break
    assert len(planned_by) == 2
    assert _decisions(base, ATTACKER) == []
    _until_both(base, 200)
    incident = send("GET", base, f"/api/security/incidents/{incident_id}", headers=ADMIN).json()
    assert incident["status"] == "new"

    sessions = list(_session_per_worker(base).values())
    first = _on_its_worker("POST", base, run_path, sessions[0])
    assert first.status_code == 200, first.text
    assert first.json()["steps"][0]["status"] == "done"
    second = _on_its_worker("POST", base, run_path, sessions[1])  # the other worker
    assert second.status_code == 200, second.text
    assert second.json()["steps"][0]["status"] == "already_done"
    [ban] = _decisions(base, ATTACKER)
    assert ban["decision_id"] == first.json()["steps"][0]["results"][0]["decision_id"]
    _until_both(base, 403)

    reverted = _on_its_worker("POST", base, run_path + "/revert", sessions[1])
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["steps"][0]["reverted"][0]["decision_id"] == ban["decision_id"]
    _until_both(base, 200)

    other = "127.0.0.3"
    later = send(
        "POST", base, "/api/security/incidents", headers=ADMIN,
        json={"title": "Another source", "observables": {"ips": [other]}},
    ).json()["incident_id"]  # fmt: skip
    approve_path = f"/api/security/incidents/{later}/playbooks/approved_ban"
    paused = _on_its_worker("POST", base, approve_path, sessions[0])
    asked_by = time.time()  # the approval was made before this: it expires by asked_by + ttl
    assert paused.json()["status"] == "awaiting_approval", paused.text
    approval_id = paused.json()["steps"][0]["approval_id"]
    for _ in range(TRIES):  # bounded wait on a condition: the approval's TTL has passed
        if time.time() > asked_by + APPROVAL_TTL:
            break
        time.sleep(0.05)
    approve = f"/api/security/approvals/{approval_id}/approve"
    late = _on_its_worker("POST", base, approve, sessions[1])
    assert late.status_code == 409 and late.json()["detail"]["code"] == "expired", late.text
    assert _decisions(base, other) == []
