"""The example app under ``uvicorn --workers 2`` with its state in Redis: both workers
see the same incidents and changes, concurrent creations of one dedup key on
different workers open one incident, and the timeline (one audit trail, shared by
the workers) verifies. Each request opens a new connection, so the kernel spreads
them over the workers; answers name the worker that gave them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._uvicorn import example_app_workers, example_env

KEY = "test-admin-key-0123456789abcdef-incmodel"
ADMIN = {"X-API-Key": KEY, "Connection": "close"}
BASE = "/api/security/incidents"
TRIES = 400  # bounded: until both workers have answered, never timed


@pytest.fixture
def two_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    env = example_env(KEY, redis_db, tmp_path)
    with example_app_workers(env, tmp_path) as base:
        yield base


def _on_both(base: str, path: str) -> dict[str, Any]:
    """``path`` as each worker answers it (both must answer 200)."""
    answers: dict[str, Any] = {}
    for _ in range(TRIES):
        answer = httpx.get(base + path, headers=ADMIN, timeout=30)
        assert answer.status_code == 200, answer.text
        answers[answer.headers["x-test-worker"]] = answer.json()
        if len(answers) == 2:
            return answers
    pytest.fail(f"only {len(answers)} worker(s) answered {path}")


def test_two_workers_share_incidents_changes_and_dedup(two_workers: str) -> None:
    """An incident opened on one worker is read and changed on either; eight creations
    of one dedup key spread over both workers at once open one incident."""
    base = two_workers
    opened = httpx.post(base + BASE, json={"title": "SQL injection"}, headers=ADMIN, timeout=30)
    assert opened.status_code == 201, opened.text
    incident_id = opened.json()["incident_id"]
    seen = _on_both(base, f"{BASE}/{incident_id}")
    assert {a["status"] for a in seen.values()} == {"new"}
    triaged = httpx.patch(
        base + f"{BASE}/{incident_id}", json={"status": "triaged"}, headers=ADMIN, timeout=30
    )
    assert triaged.status_code == 200, triaged.text
    seen = _on_both(base, f"{BASE}/{incident_id}")
    assert {a["status"] for a in seen.values()} == {"triaged"}

    body = {"title": "Scanner", "dedup_key": "scanner:192.0.2.8"}

    def create(n: int) -> tuple[str, str]:
        answer = httpx.post(
            base + BASE, json={**body, "alert_ids": [f"a{n}"]}, headers=ADMIN, timeout=30
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["incident_id"], answer.headers["x-test-worker"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert len({incident for incident, _ in results}) == 1
    scanner = results[0][0]
    seen = _on_both(base, f"{BASE}/{scanner}")
    assert {a["occurrences"] for a in seen.values()} == {8}
    timelines = _on_both(base, f"{BASE}/{scanner}/timeline")
    for timeline in timelines.values():
        assert timeline["verified"] is True, timeline["verification"]
        assert len(timeline["entries"]) == 8
