"""The verifier CLI catches and names each kind of tampering done with sqlite3."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.audit import AuditLevel, AuditLogger, SecurityEventType
from pynomaly_security.audit.chain import record_hash
from pynomaly_security.audit.stores._sql import COLUMNS, to_record
from pynomaly_security.settings import SecuritySettings

Settings = Callable[..., SecuritySettings]


async def _populate(settings: SecuritySettings) -> bytes:
    async with AuditLogger.from_settings(settings) as audit:
        for i in range(20):
            await audit.log_security_event(
                SecurityEventType.LOGIN_FAILURE if i % 2 else SecurityEventType.ACCESS_DENIED,
                f"event {i}",
                AuditLevel.WARNING,
                {"i": i},
                user_id=f"user{i % 3}",
            )
        return audit.public_key_pem()


@pytest.fixture
def trail(
    tmp_path: Path, settings_for: Settings, monkeypatch: pytest.MonkeyPatch, master_key: str
) -> Path:
    """20 records, checkpoints every 5, the public key pinned in key.pem."""
    db = tmp_path / "audit.db"
    settings = settings_for(f"sqlite:///{db}", audit_checkpoint_every=5)
    (tmp_path / "key.pem").write_bytes(asyncio.run(_populate(settings)))
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", master_key)
    return db


def _verify(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--db", f"sqlite:///{db}", *extra])
    return code, capsys.readouterr().out.strip().splitlines()[-1]  # after any log line


def _sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


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


def test_clean_trail_verifies(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An untouched trail exits 0 with the count."""
    code, out = _verify(trail, capsys)
    assert code == 0
    assert out.startswith("OK: 20 records verified, 20 signed checkpoints")  # one per commit


def test_edited_record(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Changing a column of record 7 is named as an edit of record 7."""
    _sql(trail, "UPDATE audit_records SET event_type = 'login_success' WHERE seq = 7")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=7 edited:")


def test_edited_and_rehashed_record(
    trail: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-hashing only the edited record is caught at record 7: by its own signed
    checkpoint (every commit is signed, and anchored), else because its successor
    links to the old hash."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY")
    _sql(trail, "UPDATE audit_records SET level = 'info' WHERE seq = 7")
    with sqlite3.connect(trail) as conn:
        row = conn.execute(f"SELECT {COLUMNS} FROM audit_records WHERE seq = 7").fetchone()
        conn.execute(
            "UPDATE audit_records SET hash = ? WHERE seq = 7", (record_hash(to_record(row)),)
        )
    code, out = _verify(trail, capsys, "--public-key", str(trail.parent / "key.pem"))
    assert code == 1
    assert out.startswith("FAIL seq=7 rewritten: the chain up to record 7 was rewritten")


def test_forged_record_with_key(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the master key, an edit followed by re-hashing the whole chain fails at the record."""
    _sql(trail, "UPDATE audit_records SET level = 'info' WHERE seq = 7")
    _rehash_from(trail, 7)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=7 forged_record:")


def test_rewritten_chain_without_key(
    trail: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consistently re-hashed chain contradicts the signed checkpoint (pinned key file)."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY")
    _sql(trail, "UPDATE audit_records SET level = 'info' WHERE seq = 7")
    _rehash_from(trail, 7)
    code, out = _verify(trail, capsys, "--public-key", str(trail.parent / "key.pem"))
    assert code == 1
    assert out.startswith("FAIL seq=7 rewritten:")  # every commit is signed


def test_deleted_record(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing sequence number is named as a deletion."""
    _sql(trail, "DELETE FROM audit_records WHERE seq = 7")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=7 deleted: record 7 is missing")


def test_reordered_records(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swapping two rows' positions is named as a reordering."""
    _sql(
        trail,
        "UPDATE audit_records SET seq = -1 WHERE seq = 7",
        "UPDATE audit_records SET seq = 7 WHERE seq = 8",
        "UPDATE audit_records SET seq = 8 WHERE seq = -1",
    )
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=7 reordered:")


def test_inserted_record(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A row slipped in at 7 (later rows renumbered, its own hash made valid) is named."""
    with sqlite3.connect(trail) as conn:
        conn.execute("UPDATE audit_records SET seq = -seq WHERE seq >= 7")
        conn.execute("UPDATE audit_records SET seq = 1 - seq WHERE seq < 0")
        forged = to_record(
            conn.execute(f"SELECT {COLUMNS} FROM audit_records WHERE seq = 3").fetchone()
        )
        prev = conn.execute("SELECT hash FROM audit_records WHERE seq = 6").fetchone()[0]
        forged = dataclasses.replace(forged, seq=7, prev_hash=prev)
        forged = dataclasses.replace(forged, hash=record_hash(forged))
        conn.execute(
            f"INSERT INTO audit_records ({COLUMNS}) VALUES ({', '.join('?' * 15)})",
            dataclasses.astuple(forged),
        )
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=7 inserted:")


def test_truncated_tail(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Dropping the newest records is caught against the last signed checkpoint."""
    _sql(trail, "DELETE FROM audit_records WHERE seq > 16")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=17 truncated:")


def test_truncated_tail_with_its_checkpoint(
    trail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting the tail and its checkpoints still leaves the signed checkpoint 15 behind..."""
    _sql(
        trail,
        "DELETE FROM audit_records WHERE seq > 12",
        "DELETE FROM audit_checkpoints WHERE seq > 15",
    )
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=13 truncated:")


def test_forged_checkpoint(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint whose signed content was changed is named as forged."""
    _sql(trail, "UPDATE audit_checkpoints SET head_hash = zeroblob(32) WHERE seq = 10")
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=10 forged_checkpoint:")


def test_checkpoint_signed_by_an_impostor(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint re-signed with another key fails against the pinned key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pynomaly_security.audit.chain import checkpoint_message
    from pynomaly_security.audit.sealing import signing_key_id

    impostor = Ed25519PrivateKey.generate()
    raw = impostor.public_key().public_bytes_raw()
    with sqlite3.connect(trail) as conn:
        seq, head, ts = conn.execute(
            "SELECT seq, head_hash, ts_us FROM audit_checkpoints WHERE seq = 15"
        ).fetchone()
        sig = impostor.sign(checkpoint_message(seq, head, ts))
        conn.execute(
            "UPDATE audit_checkpoints SET key_id = ?, signature = ? WHERE seq = 15",
            (signing_key_id(raw), sig),
        )
        conn.execute("INSERT INTO audit_public_keys VALUES (?, ?)", (signing_key_id(raw), raw))
    code, out = _verify(trail, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=15 forged_checkpoint:")


def test_export_decrypts_and_filters(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Export prints JSON Lines with controls, filtered by user and standard."""
    import json

    code = main(
        [
            "audit",
            "export",
            "--db",
            f"sqlite:///{trail}",
            "--user-id",
            "user1",
            "--standard",
            "HIPAA",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 7
    assert {r["user_id"] for r in rows} == {"user1"}
    assert all("164.312(b)" in r["controls"]["HIPAA"] for r in rows)


def test_cli_runs_as_a_module(trail: Path, master_key: str) -> None:
    """``python -m pynomaly_security audit verify`` works as a program (exit code, stdout)."""
    env = {**os.environ, "PYNOMALY_MASTER_KEY": master_key}
    ok = subprocess.run(
        [sys.executable, "-m", "pynomaly_security", "audit", "verify", "--db", f"sqlite:///{trail}"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 20 records")
    _sql(trail, "DELETE FROM audit_records WHERE seq = 3")
    bad = subprocess.run(
        [sys.executable, "-m", "pynomaly_security", "audit", "verify", "--db", f"sqlite:///{trail}"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stdout.startswith("FAIL seq=3 deleted")


def test_verify_refuses_a_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong --db path is an error (exit 2), never "OK: 0 records", and creates no file."""
    missing = tmp_path / "nope.db"
    assert main(["audit", "verify", "--db", f"sqlite:///{missing}"]) == 2
    assert "error:" in capsys.readouterr().err
    assert not missing.exists()


def test_anchored_checkpoints_catch_a_truncation_that_deleted_checkpoints(
    tmp_path: Path,
    settings_for: Settings,
    master_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Deleting the tail *and* its checkpoints fails against anchored copies (a handler's
    JSON Lines here, with the default file anchor switched off)."""
    import json

    db = tmp_path / "audit.db"
    anchored: list[dict[str, object]] = []

    async def populate() -> None:
        settings = settings_for(
            f"sqlite:///{db}", audit_checkpoint_every=5, audit_anchor_file_enabled=False
        )
        async with AuditLogger.from_settings(settings) as audit:
            audit.register_checkpoint_handler(anchored.append)
            for i in range(20):
                await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"e{i}")

    asyncio.run(populate())
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text("".join(json.dumps(a) + "\n" for a in anchored))
    assert [a["seq"] for a in anchored] == list(range(1, 21))  # each security commit
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", master_key)
    _sql(
        db,
        "DELETE FROM audit_records WHERE seq > 12",
        "DELETE FROM audit_checkpoints WHERE seq > 12",
    )
    code, out = _verify(db, capsys)  # the checkpoints say they were anchored
    assert (code, out.split(":")[0]) == (1, "FAIL seq=12 anchor_missing")
    code, out = _verify(db, capsys, "--anchors", str(anchors))
    assert code == 1
    assert out.startswith("FAIL seq=13 truncated: records 13..20 are missing")
