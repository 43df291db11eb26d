"""Does hashing stall the event loop? /health latency while logins are hashed.

Starts the example app under uvicorn (one worker, 127.0.0.1), then for
``--seconds`` runs ``--logins`` concurrent login loops with random user names
(each waits ``--pause`` seconds between logins: 8 loops with 3 s pauses is under
3 logins/s, issue 12 item 8's load) while one probe requests ``GET /health``
every 50 ms. Prints the probe's median, p95 and worst latency, and the login
answers. The auth rate limits are switched off so every login reaches Argon2.

Usage::

    python bench/login_loop.py [--seconds 20] [--logins 8] [--pause 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(base: str, seconds: float, logins: int, pause: float) -> None:
    deadline = time.monotonic() + seconds
    answers: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []

    async def login_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            body = {"username": secrets.token_hex(6), "password": secrets.token_hex(8)}
            answers[(await client.post("/login", json=body)).status_code] += 1
            await asyncio.sleep(pause)

    async def probe(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await client.get("/health")
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await asyncio.gather(probe(client), *(login_loop(client) for _ in range(logins)))
    latencies.sort()
    print(f"logins: {dict(answers)}")
    print(
        f"/health over {len(latencies)} probes: median {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)]:.1f} ms, worst {latencies[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--logins", type=int, default=8)
    parser.add_argument("--pause", type=float, default=3)
    args = parser.parse_args()
    port = _free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        PYNOMALY_SECURITY__AUTH_RATE_LIMITS_ENABLED="false",
        PYNOMALY_SECURITY__DEVELOPMENT_MODE="true",
        PYNOMALY_SECURITY__AUDIT_DB_URL="sqlite:///:memory:",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        asyncio.run(_run(base, args.seconds, args.logins, args.pause))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
