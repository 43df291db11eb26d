"""sqlmap (Debian's package, installed by ``.ci/run``) against the example's
deliberately vulnerable route under a real uvicorn on 127.0.0.1, with the edge
inspection in detect mode: with the SQL sink off it finds the injection (so the
test can fail), with the sink on it finds nothing at ``--level 5 --risk 3`` with
every technique, with and without tamper scripts, and never gets a 500 (a
database error is what tells a scanner a parameter reaches SQL). Issue 15."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from examples.app import create_app
from pynomaly_security import SecuritySettings
from tests.conftest import require_program

TAMPER = "space2comment,between,randomcase,charencode"


@contextmanager
def demo_server(tmp_path: Path, *, protected: bool) -> Iterator[str]:
    """The example app with its vulnerable routes under uvicorn; yields its base URL."""
    import uvicorn

    from examples.__main__ import server_config

    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        detection_mode="detect",  # the edge only reports: the sink is under test
        sql_injection_protection=protected,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, demo_vulnerable=True)
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def sqlmap(tmp_path: Path, url: str, *options: str, dbms: str | None = "SQLite") -> str:
    """Run sqlmap non-interactively on ``url``'s ``name`` parameter; its output
    (``dbms=None``: sqlmap tries the payloads of every database it knows)."""
    program = require_program("sqlmap")
    out = tmp_path / "sqlmap"
    result = subprocess.run(
        [
            program, "-u", url, "-p", "name", "--batch", *([f"--dbms={dbms}"] if dbms else []),
            "--output-dir", str(out), "--flush-session", "--disable-coloring",
            "--time-sec=2", "--timeout=10", "--retries=0", *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # sqlmap keeps its history and sessions under HOME: not the user's.
        env={**os.environ, "HOME": str(tmp_path)},
    )
    return result.stdout + result.stderr


def test_sqlmap_finds_the_injection_without_the_sink(tmp_path: Path) -> None:
    """Protection off: sqlmap identifies the parameter as injectable."""
    require_program("sqlmap")
    with demo_server(tmp_path, protected=False) as base:
        output = sqlmap(tmp_path, f"{base}/demo/users?name=alice", "--technique=BU")
    assert "sqlmap identified the following injection point" in output, output[-3000:]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("--technique=BEUSTQ",), id="all-techniques"),
        pytest.param(("--technique=BEUSTQ", f"--tamper={TAMPER}"), id="tampered"),
    ],
)
def test_sqlmap_finds_nothing_with_the_sink(tmp_path: Path, options: tuple[str, ...]) -> None:
    """Protection on, level 5 and risk 3: not injectable, and no probe ever made the
    database fail (sqlmap lists every HTTP error code it saw; 403 only)."""
    require_program("sqlmap")
    with demo_server(tmp_path, protected=True) as base:
        output = sqlmap(
            tmp_path, f"{base}/demo/users?name=alice", "--level=5", "--risk=3", *options
        )
    assert "does not seem to be injectable" in output, output[-3000:]
    assert "identified the following injection point" not in output
    assert "403 (Forbidden)" in output  # the probes that broke the statement reached the sink
    assert "500 (Internal Server Error)" not in output
