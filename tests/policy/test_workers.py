"""A policy activated through one worker is enforced by the other: the example app
under ``uvicorn --workers 2`` on Redis. Polled with a bounded number of tries until
both workers refuse (each reloads within about ``POLICY_POLL_SECONDS``), never timed;
a rollback to the earlier version lets the request through on both again."""

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

KEY = "test-admin-key-0123456789abcdef-policies"
ADMIN = {"X-API-Key": KEY}
BASE = "/api/security/policies"
TRIES = 400


def _policy(deny: bool) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"id": "read", "effect": "allow", "principals": ["*"], "actions": ["GET"]}
    ]
    if deny:
        rules.append(
            {"id": "no-delete", "effect": "deny", "principals": ["*"], "actions": ["DELETE"],
             "resources": ["/items/*"]}
        )  # fmt: skip
    return {"id": "items", "rules": rules}


@pytest.fixture
def two_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    env = example_env(KEY, redis_db, tmp_path, **LOOSE_MFA_LIMITS)
    with example_app_workers(env, tmp_path) as base:
        yield base




def _until(method: str, base: str, path: str, done: int, **kwargs: Any) -> httpx.Response:
    """Send until a worker answers ``done`` (the session is in one worker's memory)."""
    for _ in range(TRIES):
        answer = send(method, base, path, **kwargs)
        if answer.status_code == done:
            return answer
        assert answer.status_code == 401, answer.text
    pytest.fail(f"no worker answered {done} to {method} {path}")


def _until_both(base: str, status: int) -> None:
    """DELETE /items/1 until each worker answered ``status``; a worker seen answering it
    that answers otherwise later is a failure."""
    until_both_answer(lambda: send("DELETE", base, "/items/1"), status, TRIES)


@pytest.mark.slow
@pytest.mark.redis
def test_an_activation_on_one_worker_is_enforced_by_the_other(two_workers: str) -> None:
    """Before: DELETE of an unknown item is 404 on both. alice creates and activates
    v1 (no coarse deny), then v2 (deny DELETE /items/*): both workers answer 403, the
    other one within its poll; rollback to v1: both answer 404 again."""
    base = two_workers
    _until_both(base, 404)
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = send("POST", base, "/login", json=creds)
    assert login.status_code == 200, login.text
    session = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    _until("POST", base, "/reauth", 200, json={"password": creds["password"]}, headers=session)
    _until("POST", base, BASE, 201, json=_policy(False), headers=session)
    _until("POST", base, f"{BASE}/items/versions/1/activate", 200, headers=session)
    _until("PUT", base, f"{BASE}/items", 200, json=_policy(True), headers=session)
    _until("POST", base, f"{BASE}/items/versions/2/activate", 200, headers=session)
    _until_both(base, 403)
    _until("POST", base, f"{BASE}/items/versions/1/rollback", 200, headers=session)
    _until_both(base, 404)


def _from_both(base: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Ask until both workers gave the same answer (each flushes itself before it
    answers and the other on its poll); the agreed answer."""
    answers: dict[str, Any] = {}
    for _ in range(TRIES):
        answer = send(method, base, path, headers=ADMIN, **kwargs)
        assert answer.status_code == 200, answer.text
        answers[answer.headers["x-test-worker"]] = answer.json()
        if len(answers) == 2 and len({repr(v) for v in answers.values()}) == 1:
            return next(iter(answers.values()))
    pytest.fail(f"the workers never agreed: {answers}")


@pytest.mark.slow
@pytest.mark.redis
def test_statistics_and_replay_are_the_same_on_both_workers(two_workers: str) -> None:
    """With a coarse deny in force, refusals made by both workers are counted once in
    the shared statistics, which both workers answer alike; replaying the earlier
    version over the shared decision log gives the same report on both."""
    base = two_workers
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = send("POST", base, "/login", json=creds)
    assert login.status_code == 200, login.text
    session = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    _until("POST", base, "/reauth", 200, json={"password": creds["password"]}, headers=session)
    _until("POST", base, BASE, 201, json=_policy(True), headers=session)
    _until("POST", base, f"{BASE}/items/versions/1/activate", 200, headers=session)
    _until_both(base, 403)
    stats = _from_both(base, "GET", f"{BASE}/stats")
    rows = {r["rule_id"]: r for r in stats["rules"]}
    assert stats["denies"] >= 2 and rows["no-delete"]["denies"] == stats["denies"]
    assert rows["no-delete"]["last_matched"] is not None
    report = _from_both(base, "POST", f"{BASE}/items/replay", json={"version": 1})
    assert report["replayed"] == stats["evaluations"]
    refused = send("POST", base, f"{BASE}/items/replay", headers=ADMIN,
                    json={"version": 1, "since": 10.0, "until": 5.0})  # fmt: skip
    assert refused.status_code == 422
