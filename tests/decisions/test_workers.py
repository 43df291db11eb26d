"""A decision made through one worker is enforced by the other: the example app under
``uvicorn --workers 2`` on Redis. The attacker connects from 127.0.0.2 (its own
loopback address), the admin from 127.0.0.1. Polled with a bounded number of tries
until the other worker refuses, never timed (each worker reloads within about
``DECISION_POLL_SECONDS``); reverting lets the address back in on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.app import DEMO_USERS
from tests._uvicorn import (
    LOOSE_MFA_LIMITS,
    example_app_workers,
    example_env,
    send,
    until_both_answer,
)

KEY = "test-admin-key-0123456789abcdef-decisions"
ADMIN = {"X-API-Key": KEY}
BASE = "/api/security/decisions"
ATTACKER = "127.0.0.2"
TRIES = 400


@pytest.fixture
def two_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    env = example_env(KEY, redis_db, tmp_path, **LOOSE_MFA_LIMITS)
    with example_app_workers(env, tmp_path) as base:
        yield base




def _from_attacker(base: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=ATTACKER)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(base + "/search", params={"q": "x"}, headers={"Connection": "close"})


def _until(method: str, base: str, path: str, done: int, **kwargs: Any) -> httpx.Response:
    """Send until a worker answers ``done`` (the session is in one worker's memory)."""
    for _ in range(TRIES):
        answer = send(method, base, path, **kwargs)
        if answer.status_code == done:
            return answer
        assert answer.status_code == 401, answer.text
    pytest.fail(f"no worker answered {done} to {method} {path}")


def _until_both(base: str, status: int) -> None:
    """Requests from the attacker until each worker answered ``status``; a worker seen
    answering it that answers otherwise later is a failure."""
    until_both_answer(lambda: _from_attacker(base), status, TRIES)


@pytest.mark.slow
@pytest.mark.redis
def test_a_ban_made_on_one_worker_is_enforced_by_the_other(two_workers: str) -> None:
    """Before: both workers serve the attacker. alice bans 127.0.0.2 through one worker
    (201 names it); both workers then answer 403, the other one within its poll;
    after the revert both serve the attacker again."""
    base = two_workers
    _until_both(base, 200)
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = send("POST", base, "/login", json=creds)
    assert login.status_code == 200, login.text
    session = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    _until("POST", base, "/reauth", 200, json={"password": creds["password"]}, headers=session)
    body = {"scope": "ip", "value": ATTACKER, "action": "ban", "reason": "two-worker test"}
    made = _until("POST", base, BASE, 201, json=body, headers=session)
    decision_id = made.json()["decision_id"]
    _until_both(base, 403)
    listed = send("GET", base, BASE, params={"scope": "ip"}, headers=ADMIN)
    assert [d["decision_id"] for d in listed.json()["decisions"]] == [decision_id]
    _until("DELETE", base, f"{BASE}/{decision_id}", 200, headers=session)
    _until_both(base, 200)
