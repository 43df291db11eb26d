"""Two uvicorn workers on Redis: one start-up run (leased), the same status on both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._uvicorn import example_app_workers, example_env, send

KEY = "test-admin-key-0123456789abcdef-compliance"
TRIES = 400


@pytest.mark.slow
@pytest.mark.redis
def test_both_workers_answer_one_run(redis_db: str, tmp_path: Path) -> None:
    """The start-up run is leased in Redis: one worker runs it, both answer its results
    (from the state in Redis) with the same run id and audit head."""
    env = example_env(KEY, redis_db, tmp_path, compliance_enabled="true")
    with example_app_workers(env, tmp_path) as base:
        runs: dict[str, set[str]] = {}
        for _ in range(TRIES):
            answer = send(
                "GET", base, "/api/security/compliance/status", headers={"X-API-Key": KEY}
            )
            if answer.status_code == 503:  # the other worker's run is not finished yet
                continue
            assert answer.status_code == 200, answer.text
            body = answer.json()
            runs.setdefault(answer.headers["x-test-worker"], set()).add(body["run"]["run_id"])
            if len(runs) == 2:
                break
        assert len(runs) == 2, runs
        assert len(set.union(*runs.values())) == 1, runs
        pci = body["frameworks"]["pci-dss"]
        assert pci["score"] is not None and body["run"]["audit_head"]["hash"]
