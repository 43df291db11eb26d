"""SIGKILL a real uvicorn under load: no security event whose response completed is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pynomaly_security.audit import AuditLogger
from pynomaly_security.settings import SecuritySettings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _uvicorn(
    db_url: str, port: int, master_key: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYNOMALY_MASTER_KEY": master_key,
        "PYNOMALY_SECURITY__AUDIT_DB_URL": db_url,
        "PYNOMALY_SECURITY__AUDIT_CHECKPOINT_EVERY": "50",
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "_killapp:create_app", "--factory",
        "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("ab") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


async def _wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):  # a bound on a hang (30 s), not a timing assertion
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited during start-up")
        try:
            if (await client.get("/ping")).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError("uvicorn did not start")


async def test_sigkill_under_load_loses_no_completed_event(
    tmp_path: Path, settings_for: Callable[..., SecuritySettings], master_key: str
) -> None:
    """Responses completed before SIGKILL are all in the trail; it verifies after restart."""
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    port = _free_port()
    completed: list[int] = []
    with _uvicorn(db_url, port, master_key, tmp_path / "uvicorn.log") as proc:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await _wait_ready(client, proc)
            counter = iter(range(1_000_000))
            killed = asyncio.Event()

            async def worker() -> None:
                while not killed.is_set():
                    n = next(counter)
                    try:
                        response = await client.post("/event", params={"n": n})
                        await client.get("/ping")
                    except httpx.TransportError:
                        return
                    if response.status_code == 200 and not killed.is_set():
                        completed.append(n)
                    if len(completed) >= 400 and not killed.is_set():
                        proc.send_signal(signal.SIGKILL)  # mid-load: others are in flight
                        killed.set()

            await asyncio.gather(*(worker() for _ in range(16)))
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # Restart on the same database and keep writing: the chain continues.
    with _uvicorn(db_url, port, master_key, tmp_path / "uvicorn.log") as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await _wait_ready(client, proc)
            assert (await client.post("/event", params={"n": -1})).status_code == 200
        proc.send_signal(signal.SIGTERM)  # graceful: flushes and signs the tail
        proc.wait(timeout=30)

    async with AuditLogger.from_settings(settings_for(db_url)) as audit:
        result = await audit.verify()
        stored: set[int] = set()
        offset = 0
        while page := await audit.query(event_type="login_failure", limit=1000, offset=offset):
            stored.update(r["details"]["n"] for r in page)
            offset += len(page)
    assert result.ok, result.message
    assert set(completed) <= stored
    assert -1 in stored
    assert result.unsigned_tail == 0
