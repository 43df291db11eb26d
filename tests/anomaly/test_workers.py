"""Two uvicorn workers learn one profile through Redis (issue 22: multi-worker safe)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests._uvicorn import example_app_workers, example_env, send

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


@pytest.mark.slow
def test_two_workers_learn_one_profile(tmp_path: Path, redis_db: str) -> None:
    """Requests spread over two workers add up to one profile both read back: each
    worker's counts reach Redis as additions, none overwrites the other's."""
    env = example_env(KEY, redis_db, tmp_path, anomaly_mode="learn", anomaly_flush_seconds="0.2")
    with example_app_workers(env, tmp_path) as base:
        workers = set()
        for i in range(60):
            answer = send("GET", base, "/search", params={"q": f"lamp {i % 7}"})
            assert answer.status_code == 200
            workers.add(answer.headers["x-test-worker"])
        assert len(workers) == 2
        seen: dict[str, int] = {}
        for _ in range(200):  # each worker reads the shared profile within a flush or two
            status = send("GET", base, "/api/security/anomaly", headers=ADMIN)
            seen[status.headers["x-test-worker"]] = status.json()["profile"]["requests"]
            if len(seen) == 2 and min(seen.values()) >= 60:
                break
            time.sleep(0.05)
        assert len(seen) == 2 and set(seen.values()) == {60}, seen
