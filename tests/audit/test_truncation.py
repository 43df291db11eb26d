"""Issue 12, item 11: truncation, emptying, early pruning, deleted subject keys and
public-key-only forgeries are caught by ``audit verify`` (exit 1).

The trail is written by a real app (FastAPI behind ``setup_security_middleware``,
driven over ASGI, started and stopped through its lifespan), then tampered with
``sqlite3`` the way an attacker holding the database file would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request

from pynomaly_security import setup_security_middleware
from pynomaly_security.__main__ import main
from pynomaly_security.audit import AuditLogger, SecurityEventType
from pynomaly_security.audit.chain import record_hash
from pynomaly_security.audit.stores._sql import COLUMNS, to_record
from pynomaly_security.settings import SecuritySettings

from .conftest import MASTER_KEY, make_settings

CAPTURE = pytest.CaptureFixture[str]


def _app(settings: SecuritySettings) -> FastAPI:
    app = FastAPI()
    stack = setup_security_middleware(app, settings=settings)

    @app.get("/page/{n}")
    async def page(n: int) -> dict[str, int]:
        return {"n": n}

    @app.post("/orders/{n}")
    async def order(n: int, request: Request) -> dict[str, int]:
        assert stack.audit_logger is not None
        await stack.audit_logger.log_audit_event(
            "create", f"order:{n}", user_id=f"user{n % 3}", details={"n": n}
        )
        return {"n": n}

    return app


async def _drive(settings: SecuritySettings, orders: int = 12) -> None:
    app = _app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for n in range(orders):
                assert (await c.get(f"/page/{n}")).status_code == 200
                assert (await c.post(f"/orders/{n}")).status_code == 200
            blocked = await c.get("/page/1", params={"q": "<script>alert(1)</script>"})
            assert blocked.status_code == 403


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trail written by the app; its public key in key.pem; the master key NOT set
    (the auditor's case); the file anchor beside the database."""
    db = tmp_path / "audit.db"
    asyncio.run(_drive(make_settings(f"sqlite:///{db}")))
    keys = AuditLogger.from_settings(make_settings(f"sqlite:///{db}")).keys
    (tmp_path / "key.pem").write_bytes(keys.public_key_pem())
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_DB_URL", f"sqlite:///{db}")
    assert (tmp_path / "audit.db.anchors.jsonl").exists()
    return db


def _verify(db: Path, capsys: CAPTURE, *extra: str) -> tuple[int, str]:
    key = str(db.parent / "key.pem")
    code = main(["audit", "verify", "--db", f"sqlite:///{db}", "--public-key", key, *extra])
    return code, capsys.readouterr().out.strip()


def _sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


def _one(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _anchored_from(db: Path, seq: int) -> int:
    lines = (db.parent / "audit.db.anchors.jsonl").read_text().splitlines()
    return min(s for s in (json.loads(line)["seq"] for line in lines) if s >= seq)


def _rehash_from(db: Path, seq: int) -> None:
    """What an attacker without the keys can do: recompute the chain from ``seq`` on."""
    with sqlite3.connect(db) as conn:
        rows = [
            to_record(r) for r in conn.execute(f"SELECT {COLUMNS} FROM audit_records ORDER BY seq")
        ]
        prev = next((r.hash for r in rows if r.seq == seq - 1), bytes(32))
        for rec in rows:
            if rec.seq < seq:
                continue
            fixed = dataclasses.replace(rec, prev_hash=prev)
            prev = record_hash(fixed)
            conn.execute(
                "UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?",
                (fixed.prev_hash, prev, rec.seq),
            )


def test_untouched_trail_verifies_with_its_public_key_and_anchor(
    trail: Path, capsys: CAPTURE
) -> None:
    """No master key: the public key and the default anchor file are enough; the OK line
    names the head an auditor can note for --expect-head."""
    code, out = _verify(trail, capsys)
    assert code == 0, out
    last = _one(trail, "SELECT max(seq) FROM audit_records")
    assert f"head seq={last} hash=" in out
    assert "checked against an anchor" in out
    # Every commit is signed: nothing is left unsigned after shutdown.
    assert _one(trail, "SELECT max(seq) FROM audit_checkpoints") == last


def test_records_after_the_last_checkpoint_deleted(trail: Path, capsys: CAPTURE) -> None:
    """The newest records (after the last checkpoint the attacker leaves) are deleted."""
    last = _one(trail, "SELECT max(seq) FROM audit_records")
    _sql(trail, f"DELETE FROM audit_records WHERE seq > {last - 3}")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq={last - 2} truncated:")


def test_tail_deleted_with_its_checkpoints(trail: Path, capsys: CAPTURE) -> None:
    """Tail and its checkpoints deleted: the anchor still holds the newest head."""
    last = _one(trail, "SELECT max(seq) FROM audit_records")
    cut = last - 6
    _sql(
        trail,
        f"DELETE FROM audit_records WHERE seq > {cut}",
        f"DELETE FROM audit_checkpoints WHERE seq > {cut}",
    )
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq={cut + 1} truncated:")
    assert f"records {cut + 1}..{last} are missing" in out


def test_tail_deleted_with_checkpoints_and_anchor_file(trail: Path, capsys: CAPTURE) -> None:
    """If the anchor file beside the database is deleted too, the signed checkpoints say
    they were anchored: verify refuses to pass without the anchor; with the auditor's own
    copy of it, or the length the auditor noted, the truncation shows."""
    anchor = trail.parent / "audit.db.anchors.jsonl"
    auditor_copy = trail.parent / "auditor-copy.jsonl"
    shutil.copy(anchor, auditor_copy)
    last = _one(trail, "SELECT max(seq) FROM audit_records")
    _sql(
        trail,
        f"DELETE FROM audit_records WHERE seq > {last - 6}",
        f"DELETE FROM audit_checkpoints WHERE seq > {last - 6}",
    )
    anchor.unlink()
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq={last - 6} anchor_missing:")
    code, out = _verify(trail, capsys, "--anchor", str(auditor_copy))
    assert (code, out.split(":")[0]) == (1, f"FAIL seq={last - 5} truncated")
    code, out = _verify(trail, capsys, "--min-records", str(last))
    assert code == 1
    assert "anchor_missing" in out or "truncated" in out


def test_the_anchor_file_trimmed_with_the_tail(trail: Path, capsys: CAPTURE) -> None:
    """An attacker who trims the anchor file too is caught by the auditor's noted head."""
    code, out = _verify(trail, capsys)
    head = out.split("head seq=")[1].split(" hash=")
    noted = f"{head[0]}:{head[1].split(';')[0].split(',')[0]}"
    last = int(head[0])
    anchor = trail.parent / "audit.db.anchors.jsonl"
    kept = [ln for ln in anchor.read_text().splitlines() if json.loads(ln)["seq"] <= last - 6]
    anchor.write_text("".join(ln + "\n" for ln in kept))
    _sql(
        trail,
        f"DELETE FROM audit_records WHERE seq > {last - 6}",
        f"DELETE FROM audit_checkpoints WHERE seq > {last - 6}",
    )
    assert _verify(trail, capsys)[0] == 0  # store and anchor agree: only the auditor can tell
    code, out = _verify(trail, capsys, "--expect-head", noted)
    assert code == 1
    assert f"FAIL seq={last - 5} head_mismatch:" in out
    code, out = _verify(trail, capsys, "--min-records", str(last))
    assert out.startswith(f"FAIL seq={last - 5} truncated:")


def test_whole_log_emptied(trail: Path, capsys: CAPTURE) -> None:
    """Emptying records and checkpoints: never "OK: 0 records"; also without the anchor."""
    _sql(trail, "DELETE FROM audit_records", "DELETE FROM audit_checkpoints")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert "truncated" in out
    (trail.parent / "audit.db.anchors.jsonl").unlink()
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=1 empty: the trail holds no records")


def test_oldest_records_deleted_inside_the_retention_period(trail: Path, capsys: CAPTURE) -> None:
    """Deleting records 1..k under the signed checkpoint k looks like pruning, but the
    checkpoint is days younger than the retention: it is reported as such."""
    k = _one(trail, "SELECT min(seq) FROM audit_checkpoints WHERE seq >= 4")
    _sql(trail, f"DELETE FROM audit_records WHERE seq <= {k}")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq=1 pruned_early: records 1..{k} were deleted")
    assert "inside the retention period of 2555 days" in out
    # An auditor told of a retention shorter than the records' age accepts the pruning.
    code, out = _verify(trail, capsys, "--retention-days", "0")
    assert code == 0, out
    assert f"records 1..{k} pruned under a signed checkpoint" in out


def test_subject_keys_deleted(trail: Path, capsys: CAPTURE) -> None:
    """A subject key deleted outside erase_subject (no erasure record) is reported."""
    assert _one(trail, "SELECT count(*) FROM audit_subject_keys") == 3
    _sql(trail, "DELETE FROM audit_subject_keys WHERE rowid = 1")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert "keys_deleted: the subject keys of 1 subject(s) are missing" in out


def test_erase_subject_still_verifies(tmp_path: Path, capsys: CAPTURE) -> None:
    """A lawful erasure (the key destroyed by erase_subject) verifies without the master key."""
    db = tmp_path / "audit.db"
    settings = make_settings(f"sqlite:///{db}")

    async def run() -> bytes:
        async with AuditLogger.from_settings(settings) as audit:
            await audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "in", user_id="erin")
            await audit.erase_subject("erin")
            await audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "in", user_id="bob")
            return audit.public_key_pem()

    (tmp_path / "key.pem").write_bytes(asyncio.run(run()))
    assert _verify(db, capsys)[0] == 0
    # Erin signs in again after the erasure: a new key; deleting THAT one is a fault.
    asyncio.run(_login_again(settings))
    _sql(db, "DELETE FROM audit_subject_keys")
    code, out = _verify(db, capsys)
    assert code == 1
    assert "keys_deleted: the subject keys of 2 subject(s)" in out


async def _login_again(settings: SecuritySettings) -> None:
    async with AuditLogger.from_settings(settings) as audit:
        await audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "in", user_id="erin")


def test_rewritten_record_rehashed_after_dropping_later_checkpoints(
    trail: Path, capsys: CAPTURE
) -> None:
    """Public key only: record 7 edited, the chain re-hashed, checkpoints from 7 on dropped."""
    _sql(trail, "UPDATE audit_records SET level = 'debug' WHERE seq = 7")
    _rehash_from(trail, 7)
    _sql(trail, "DELETE FROM audit_checkpoints WHERE seq >= 7")
    code, out = _verify(trail, capsys)
    assert code == 1
    # At the first anchored checkpoint from 7 on (7 itself, unless it was interim).
    assert out.startswith(f"FAIL seq={_anchored_from(trail, 7)} rewritten:")
    # Without the anchor file as well, the records left unsigned give it away.
    (trail.parent / "audit.db.anchors.jsonl").unlink()
    code, out = _verify(trail, capsys)
    assert code == 1
    assert "anchor_missing" in out or "unsigned" in out


def test_rewritten_record_without_any_anchor_or_checkpoints(trail: Path, capsys: CAPTURE) -> None:
    """Every checkpoint and the anchor gone as well: records 7.. are unsigned security
    events, which a writer never leaves."""
    _sql(trail, "UPDATE audit_records SET level = 'debug' WHERE seq = 7")
    _rehash_from(trail, 7)
    _sql(trail, "DELETE FROM audit_checkpoints WHERE seq >= 7")
    (trail.parent / "audit.db.anchors.jsonl").unlink()
    # Only checkpoints before 7 remain, and they were anchored: verify wants the anchor.
    code, out = _verify(trail, capsys)
    assert (code, "anchor_missing" in out) == (1, True)


def test_deleted_record_and_the_rest_renumbered(trail: Path, capsys: CAPTURE) -> None:
    """Public key only: record 7 deleted, 8.. renumbered and re-hashed, later checkpoints
    dropped."""
    _sql(
        trail,
        "DELETE FROM audit_records WHERE seq = 7",
        "UPDATE audit_records SET seq = -(seq - 1) WHERE seq > 7",
        "UPDATE audit_records SET seq = -seq WHERE seq < 0",
        "DELETE FROM audit_checkpoints WHERE seq >= 7",
    )
    _rehash_from(trail, 7)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq={_anchored_from(trail, 7)} rewritten:")


def test_forged_record_appended(trail: Path, capsys: CAPTURE) -> None:
    """Public key only: a record appended (copied columns, correctly chained and hashed)
    is not covered by any signed checkpoint: every commit is signed, so it is forged."""
    with sqlite3.connect(trail) as conn:
        last = to_record(
            conn.execute(f"SELECT {COLUMNS} FROM audit_records ORDER BY seq DESC").fetchone()
        )
        model = to_record(
            conn.execute(f"SELECT {COLUMNS} FROM audit_records WHERE seq = 2").fetchone()
        )
        forged = dataclasses.replace(model, seq=last.seq + 1, prev_hash=last.hash)
        forged = dataclasses.replace(forged, hash=record_hash(forged))
        conn.execute(
            f"INSERT INTO audit_records ({COLUMNS}) VALUES ({', '.join('?' * 15)})",
            dataclasses.astuple(forged),
        )
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq={last.seq + 1} unsigned:")


def test_a_forged_anchor_line_is_refused(trail: Path, capsys: CAPTURE) -> None:
    """An anchor line not signed by the auditor's key is a forged checkpoint."""
    anchor = trail.parent / "audit.db.anchors.jsonl"
    line = json.loads(anchor.read_text().splitlines()[-1])
    line["seq"] += 5
    with anchor.open("a") as f:
        f.write(json.dumps(line) + "\n")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert "forged_checkpoint" in out


def test_a_trail_written_without_an_anchor_still_verifies_with_a_note(
    tmp_path: Path, capsys: CAPTURE
) -> None:
    """A database from before anchors (no anchored checkpoint, no anchor file) passes,
    and the OK line says that it has no anchor."""
    db = tmp_path / "audit.db"
    settings = make_settings(f"sqlite:///{db}", audit_anchor_file_enabled=False)

    async def run() -> bytes:
        async with AuditLogger.from_settings(settings) as audit:
            for i in range(3):
                await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"e{i}")
            return audit.public_key_pem()

    with structlog.testing.capture_logs() as logs:
        (tmp_path / "key.pem").write_bytes(asyncio.run(run()))
    assert any(e["event"] == "audit_no_anchor" for e in logs)  # said once, at start
    assert not (tmp_path / "audit.db.anchors.jsonl").exists()
    code, out = _verify(db, capsys)
    assert code == 0, out
    assert "NOTE: no anchor" in out


def test_verify_with_the_master_key_reaches_the_same_verdicts(
    trail: Path, capsys: CAPTURE, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master key adds a check, never removes one: truncation still fails with it."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    last = _one(trail, "SELECT max(seq) FROM audit_records")
    _sql(
        trail,
        f"DELETE FROM audit_records WHERE seq > {last - 2}",
        f"DELETE FROM audit_checkpoints WHERE seq > {last - 2}",
    )
    code, out = main(["audit", "verify", "--db", f"sqlite:///{trail}"]), capsys.readouterr()
    assert code == 1
    assert "truncated" in out.out


LEGACY = Path(__file__).parent / "data" / "legacy_trail.db"
"""Written by the code before issue 12 (checkpoints every 5 records, one erasure):
25 records, checkpoints at 5, 11, 17, 23, 25, no anchor."""


def test_a_trail_written_by_the_previous_version_still_verifies(
    tmp_path: Path, capsys: CAPTURE, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public key only and with the master key: OK, with the note that it has no anchor;
    a truncation of it is still caught against the auditor's length."""
    db = tmp_path / "legacy.db"
    shutil.copy(LEGACY, db)
    keys = AuditLogger.from_settings(make_settings(f"sqlite:///{db}")).keys
    (tmp_path / "key.pem").write_bytes(keys.public_key_pem())
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    code, out = _verify(db, capsys)
    assert code == 0, out
    assert out.startswith("OK: 25 records verified, 5 signed checkpoints")
    assert "NOTE: no anchor" in out
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    code, out = _verify(db, capsys)
    assert code == 0, out
    _sql(
        db,
        "DELETE FROM audit_records WHERE seq > 23",
        "DELETE FROM audit_checkpoints WHERE seq > 23",
    )
    code, out = _verify(db, capsys, "--min-records", "25")
    assert out.startswith("FAIL seq=24 truncated:")


def test_a_writer_does_not_sign_a_record_appended_behind_its_back(
    trail: Path, capsys: CAPTURE
) -> None:
    """A forged record appended while the app is down is not vouched for by the app's next
    checkpoint: the writer authenticates unsigned records first and records the finding,
    which verify reports (the public key is enough)."""
    with sqlite3.connect(trail) as conn:
        last = to_record(
            conn.execute(f"SELECT {COLUMNS} FROM audit_records ORDER BY seq DESC").fetchone()
        )
        model = to_record(
            conn.execute(f"SELECT {COLUMNS} FROM audit_records WHERE seq = 2").fetchone()
        )
        forged = dataclasses.replace(model, seq=last.seq + 1, prev_hash=last.hash)
        forged = dataclasses.replace(forged, hash=record_hash(forged))
        conn.execute(
            f"INSERT INTO audit_records ({COLUMNS}) VALUES ({', '.join('?' * 15)})",
            dataclasses.astuple(forged),
        )
    asyncio.run(_drive(make_settings(f"sqlite:///{trail}"), orders=1))
    assert _one(trail, "SELECT max(seq) FROM audit_checkpoints") == _one(
        trail, "SELECT max(seq) FROM audit_records"
    )
    code, out = _verify(trail, capsys)
    out = out.splitlines()[-1]  # after the app's own log lines
    assert code == 1
    assert out.startswith("FAIL seq=") and " forged_record: " in out
    reported = int(out.split()[1].removeprefix("seq="))
    # The report is the writer's own finding, committed after the forged record.
    finding = _one(
        trail, "SELECT seq FROM audit_records WHERE event_type = 'audit_tamper_detected'"
    )
    assert reported == finding and finding > forged.seq
    assert "did not authenticate" in out


def test_an_unsigned_tail_left_by_a_crash_is_signed_when_authentic(
    tmp_path: Path, capsys: CAPTURE
) -> None:
    """Records a writer committed without a checkpoint (what an older version left after a
    crash) authenticate, so the next writer signs them and the trail verifies."""
    db = tmp_path / "audit.db"
    settings = make_settings(f"sqlite:///{db}")

    async def write(n: int) -> bytes:
        async with AuditLogger.from_settings(settings) as audit:
            for i in range(n):
                await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"e{i}")
            return audit.public_key_pem()

    (tmp_path / "key.pem").write_bytes(asyncio.run(write(4)))
    _sql(db, "DELETE FROM audit_checkpoints WHERE seq > 2")  # as if never signed
    (tmp_path / "audit.db.anchors.jsonl").write_text(
        "".join(
            line + "\n"
            for line in (tmp_path / "audit.db.anchors.jsonl").read_text().splitlines()
            if json.loads(line)["seq"] <= 2
        )
    )
    assert _verify(db, capsys)[1].startswith("FAIL seq=3 unsigned:")
    asyncio.run(write(1))
    code, out = _verify(db, capsys)
    assert code == 0, out
