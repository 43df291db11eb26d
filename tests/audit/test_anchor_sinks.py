"""The anchor sinks beside the file: Redis (real server), syslog and a webhook (the outside
world, faked by a UDP socket and an HTTP server on 127.0.0.1). Each receives the
anchored checkpoints, and what it holds lets ``audit verify`` catch a truncation."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.audit import AuditLogger, SecurityEventType
from pynomaly_security.audit.anchor import SYSLOG_TAG, load_redis_anchors

from .conftest import MASTER_KEY, make_settings


async def _write(settings: object, n: int = 6) -> None:
    async with AuditLogger.from_settings(settings) as audit:  # type: ignore[arg-type]
        for i in range(n):
            await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"e{i}")


def _truncate(db: Path, keep: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"DELETE FROM audit_records WHERE seq > {keep}")
        conn.execute(f"DELETE FROM audit_checkpoints WHERE seq > {keep}")


@pytest.mark.redis
def test_redis_anchor(
    tmp_path: Path,
    redis_db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checkpoints are pushed to the Redis list; ``--anchor-redis`` checks the store."""
    redis_url = redis_db
    db = tmp_path / "audit.db"
    settings = make_settings(
        f"sqlite:///{db}", audit_anchor_file_enabled=False, audit_anchor_redis_url=redis_url
    )
    asyncio.run(_write(settings))
    anchors = asyncio.run(load_redis_anchors(redis_url, settings.audit_anchor_redis_key))
    assert [a.seq for a in anchors] == [1, 2, 3, 4, 5, 6]
    assert all(a.anchored for a in anchors)
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    url = f"sqlite:///{db}"
    assert main(["audit", "verify", "--db", url, "--anchor-redis", redis_url]) == 0
    _truncate(db, 3)
    capsys.readouterr()
    assert main(["audit", "verify", "--db", url]) == 1  # anchored: needs its anchor
    assert "anchor_missing" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", url, "--anchor-redis", redis_url]) == 1
    assert capsys.readouterr().out.startswith("FAIL seq=4 truncated:")


@pytest.fixture
def syslog_server() -> Iterator[tuple[str, list[bytes]]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                got.append(sock.recv(65536))
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}", got
    stop.set()
    thread.join()
    sock.close()


def test_syslog_anchor(
    tmp_path: Path,
    syslog_server: tuple[str, list[bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One syslog message per anchored checkpoint; the lines, saved to a file by the
    auditor, are an anchor ``--anchor`` reads (the syslog prefix is skipped)."""
    address, got = syslog_server
    db = tmp_path / "audit.db"
    settings = make_settings(
        f"sqlite:///{db}", audit_anchor_file_enabled=False, audit_anchor_syslog=address
    )
    asyncio.run(_write(settings, 4))
    # The logger's close waits for its queue; UDP delivery on loopback is immediate,
    # but the receiving thread may still be reading.
    for _ in range(50):
        if len(got) >= 4:
            break
        threading.Event().wait(0.05)
    lines = [g.decode() for g in got]
    assert len(lines) == 4 and all(SYSLOG_TAG in line for line in lines)
    saved = tmp_path / "syslog.txt"
    saved.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    _truncate(db, 2)
    assert main(["audit", "verify", "--db", f"sqlite:///{db}", "--anchor", str(saved)]) == 1
    assert capsys.readouterr().out.startswith("FAIL seq=3 truncated:")


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    got: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/anchor", got
    server.shutdown()
    thread.join()
    server.server_close()


def test_webhook_anchor(tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]) -> None:
    """One JSON POST per anchored checkpoint, delivered before the logger closes."""
    url, got = webhook
    db = tmp_path / "audit.db"
    asyncio.run(_write(make_settings(f"sqlite:///{db}", audit_anchor_webhook_url=url), 3))
    assert [g["seq"] for g in got] == [1, 2, 3]
    file_lines = (tmp_path / "audit.db.anchors.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in file_lines] == got  # the same signed checkpoints
