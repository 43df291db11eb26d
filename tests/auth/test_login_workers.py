"""At most N guesses are checked however many arrive at once, on two uvicorn
workers sharing Redis, for JSON, form and multipart logins (issue 12, item 9)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

ATTEMPTS = 5
GUESSES = 50
RIGHT = "guess-30-is-right"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    """uvicorn --workers 2 running login_workers_app, stopped afterwards."""
    port = free_port()
    env = dict(
        os.environ,
        PNS_TEST_REDIS_URL=redis_db,
        PNS_TEST_AUDIT_DB=str(tmp_path / "audit.db"),
        PNS_TEST_ATTEMPTS=str(ATTEMPTS),
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
    )
    log_path = tmp_path / "uvicorn.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "login_workers_app:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
            "--no-proxy-headers",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        pids: set[str] = set()
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail("uvicorn exited: " + log_path.read_text()[-2000:])
            with contextlib.suppress(httpx.TransportError):
                pids.add(httpx.get(base + "/health", headers={"Connection": "close"}).text)
            if len(pids) >= 2:
                break
            time.sleep(0.05)
        if len(pids) < 2:
            pytest.fail("two workers did not both answer: " + log_path.read_text()[-2000:])
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


def _guess(path: str, i: int) -> dict[str, Any]:
    fields = {"username": "alice", "password": RIGHT if i == 30 else f"wrong-{i}"}
    if path == "/login":
        return {"json": fields}
    if path == "/auth/login":
        return {"data": fields}
    return {"files": {k: (None, v) for k, v in fields.items()}}


async def _fifty(base: str, path: str) -> list[int]:
    # A fresh connection per guess, so the kernel spreads them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=GUESSES)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post(path, **_guess(path, i)) for i in range(1, GUESSES + 1))
        )
    return [r.status_code for r in answers]


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize(
    ("path", "shape"),
    [
        pytest.param("/login", "json", id="json"),
        pytest.param("/auth/login", "form", id="form"),
        pytest.param("/api/login", "multipart", id="multipart"),
    ],
)
def test_fifty_concurrent_guesses_on_two_workers(
    two_workers: str, redis_db: str, path: str, shape: str
) -> None:
    """50 parallel guesses (the 30th right): at most 5 passwords checked, at most 5
    answers other than 429, the rest 429."""
    statuses = asyncio.run(_fifty(two_workers, path))
    checked = int(redis.Redis.from_url(redis_db).get(f"pns-test:checked:{shape}") or 0)
    # Each guess is reserved in Redis before its password is checked: exactly ATTEMPTS
    # are checked (401, or 200 if the right one is among them), the rest refused.
    assert checked == ATTEMPTS, statuses
    assert statuses.count(429) == GUESSES - ATTEMPTS, statuses
    assert set(statuses) - {429} <= {200, 401}, statuses
