"""Real ``uvicorn --workers N`` servers for the multi-worker tests, started and
stopped (with their workers) around a test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.storage._redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def uvicorn_workers(
    app: str,
    app_dir: Path,
    *,
    workers: int,
    env: Mapping[str, str],
    log_path: Path,
    ready_workers: int = 2,
    worker_of: Callable[[httpx.Response], str] = lambda response: response.text,
    health: str = "/health",
    cwd: Path | None = None,
) -> Iterator[str]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``) on a free port; yields the base
    URL once ``ready_workers`` distinct workers answered ``health`` (``worker_of`` names
    the worker of an answer), fails with the server's log otherwise."""
    port = free_port()
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--app-dir",
                str(app_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-proxy-headers",
            ],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            seen: set[str] = set()
            for _ in range(2000):
                if proc.poll() is not None:
                    pytest.fail("uvicorn exited: " + log_path.read_text()[-3000:])
                with contextlib.suppress(httpx.TransportError):
                    # A new connection each time, so the kernel spreads them over workers.
                    seen.add(worker_of(httpx.get(base + health, headers={"Connection": "close"})))
                if len(seen) >= ready_workers:
                    break
                time.sleep(0.05)
            if len(seen) < ready_workers:
                pytest.fail(f"{len(seen)} workers answered: " + log_path.read_text()[-3000:])
            yield base
        finally:
            proc.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def example_env(admin_key: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The example app's environment for the worker tests: an admin key, a fresh master
    key, Redis shared by the workers, the audit trail in ``tmp_path``, plus ``extra``
    (``PYNOMALY_SECURITY__`` names)."""
    from pynomaly_security.crypto.keys import generate_master_key

    return {
        "PYNOMALY_SECURITY__ADMIN_API_KEY": admin_key,
        "PYNOMALY_MASTER_KEY": generate_master_key(),
        "PYNOMALY_SECURITY__REDIS_URL": redis_url,
        "PYNOMALY_SECURITY__AUDIT_DB_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        **{f"PYNOMALY_SECURITY__{name.upper()}": value for name, value in extra.items()},
    }


# Admin steps retry /reauth until it reaches the worker holding the session.
LOOSE_MFA_LIMITS = {
    "mfa_rate_limits": '["1000/minute"]',
    "mfa_account_rate_limits": '["1000/minute"]',
}


@contextlib.contextmanager
def example_app_workers(
    env: Mapping[str, str], tmp_path: Path, workers: int = 2
) -> Iterator[str]:
    """The example app (``tests/monitor/example_workers_app.py``) under ``uvicorn
    --workers N`` (2 by default) with ``env``, every worker answering (each names itself
    in ``X-Test-Worker``); its base URL."""
    with uvicorn_workers(
        "example_workers_app:app",
        ROOT / "tests" / "monitor",
        workers=workers,
        env=env,
        log_path=tmp_path / "uvicorn.log",
        ready_workers=workers,
        worker_of=lambda response: response.headers["x-test-worker"],
        cwd=tmp_path,
    ) as base:
        yield base


def send(
    method: str, base: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    """One request on a new connection (so the kernel spreads them over the workers)."""
    sent = {"Connection": "close", **(headers or {})}
    return httpx.request(method, base + path, headers=sent, timeout=30, **kwargs)


def until_both_answer(request: Callable[[], httpx.Response], status: int, tries: int) -> None:
    """Send ``request`` until each of the two workers answered ``status``; a worker seen
    answering it that answers otherwise later is a failure (bounded by ``tries``)."""
    seen: set[str] = set()
    for _ in range(tries):
        answer = request()
        worker = answer.headers["x-test-worker"]
        if answer.status_code == status:
            seen.add(worker)
            if len(seen) == 2:
                return
        else:
            assert worker not in seen, f"worker {worker} went back to {answer.status_code}"
    pytest.fail(f"only {len(seen)} worker(s) answered {status}")
