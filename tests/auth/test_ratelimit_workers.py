"""A limit of N holds across 4 uvicorn worker processes sharing Redis (not 4N)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LIMIT = 20
REQUESTS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def four_workers(redis_db: str, tmp_path: Path) -> Iterator[str]:
    """uvicorn --workers 4 on a free port, stopped (with its workers) afterwards."""
    redis_url = redis_db
    port = free_port()
    env = dict(os.environ, PNS_TEST_REDIS_URL=redis_url, PNS_TEST_LIMIT=f"{LIMIT}/day")
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
            "ratelimit_workers_app:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "4",
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
        # Ready when several workers answer (health is exempt from the limit).
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail("uvicorn exited: " + log_path.read_text()[-2000:])
            with contextlib.suppress(httpx.TransportError):
                pids.add(httpx.get(base + "/health", headers={"Connection": "close"}).text)
            if len(pids) >= 2:
                break
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@pytest.mark.slow
@pytest.mark.redis
def test_limit_holds_across_four_workers(four_workers: str) -> None:
    """60 requests on fresh connections, spread over 4 workers: exactly 20 pass."""
    statuses: list[int] = []
    served_by: set[str] = set()
    for _ in range(REQUESTS):
        # A new connection per request so the kernel spreads them over workers.
        response = httpx.get(four_workers + "/", headers={"Connection": "close"})
        statuses.append(response.status_code)
        if response.status_code == 200:
            served_by.add(response.text)
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    # A range: which worker accepts a connection is the kernel's choice.
    assert 2 <= len(served_by) <= 4, "requests were not spread over several workers"
