"""Batched re-encryption of SQLite tables, the `keys` CLI and the SQLite example."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import runpy
import sqlite3
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main as cli_main
from pynomaly_security.cli import keys as keys_cli
from pynomaly_security.cli.keys import register
from pynomaly_security.crypto import (
    DataEncryption,
    FieldEncryption,
    KeyRing,
    generate_master_key,
    rotate_sqlite_table,
)
from pynomaly_security.exceptions import ConfigurationError, InvalidToken
from pynomaly_security.settings import SecuritySettings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field_encryption_sqlite.py"


def _fields(master: bytes, version: int, min_version: int = 1) -> FieldEncryption:
    ring = KeyRing(master, current_version=version, min_version=min_version)
    fields = FieldEncryption(DataEncryption(keyring=ring, algorithm="aes_gcm"))
    fields.register_encrypted_field("users", "ssn")
    fields.register_encrypted_field("users", "email", blind_index=True)
    return fields


def _db(path: Path, fields: FieldEncryption, n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id TEXT PRIMARY KEY, ssn TEXT, email TEXT, email_bidx TEXT)")
    with conn:
        for i in range(n):
            row = fields.encrypt_record(
                "users", {"id": f"u{i}", "ssn": f"123-45-{i:04d}", "email": f"u{i}@example.com"}
            )
            conn.execute("INSERT INTO users VALUES (?, ?, ?, ?)", tuple(row.values()))
    return conn


def _key_ids(conn: sqlite3.Connection, fields: FieldEncryption) -> set[int]:
    return {fields.encryption.key_id(s) for (s,) in conn.execute("SELECT ssn FROM users")}


def test_rotation_in_batches_and_idempotent(tmp_path: Path) -> None:
    """Every row moves to the newest key in ceil(n/batch) batches; a second run rotates none."""
    master = b"m" * 32
    conn = _db(tmp_path / "a.db", _fields(master, 1), 25)
    fields = _fields(master, 2)
    report = rotate_sqlite_table(conn, fields, "users", batch_size=10)
    assert (report.scanned, report.rotated, report.batches) == (25, 25, 3)
    assert _key_ids(conn, fields) == {2}
    assert rotate_sqlite_table(conn, fields, "users", batch_size=10).rotated == 0
    retired = _fields(master, 2, min_version=2)
    rows = conn.execute("SELECT id, ssn, email, email_bidx FROM users WHERE id = 'u3'")
    record = dict(zip(("id", "ssn", "email", "email_bidx"), rows.fetchone(), strict=True))
    assert retired.decrypt_record("users", record)["ssn"] == "123-45-0003"


def test_rotation_mid_stream_keeps_concurrent_writes(tmp_path: Path) -> None:
    """Rows written by the app with the new key during rotation are neither lost nor rewritten."""
    master = b"m" * 32
    conn = _db(tmp_path / "b.db", _fields(master, 1), 6)
    fields = _fields(master, 2)
    # Half-way state: the app (already on key 2) rewrote u0 and added u99.
    with conn:
        for user in ({"id": "u0", "ssn": "999-99-0000"}, {"id": "u99", "ssn": "555-55-5555"}):
            row = fields.encrypt_record("users", {**user, "email": f"{user['id']}@x.org"})
            conn.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)", tuple(row.values()))
    report = rotate_sqlite_table(conn, fields, "users", batch_size=4)
    assert report.rotated == 5 and report.scanned == 7
    ssn = {
        r[0]: fields.decrypt_record("users", dict(zip(("id", "ssn"), r, strict=True)))["ssn"]
        for r in conn.execute("SELECT id, ssn FROM users")
    }
    assert ssn["u0"] == "999-99-0000" and ssn["u99"] == "555-55-5555" and ssn["u5"] == "123-45-0005"


class _AppWritesDuringRotation(FieldEncryption):
    """Interleaves an application write (another connection) between read and update of u1."""

    def __init__(self, fields: FieldEncryption, path: Path) -> None:
        super().__init__(fields.encryption)
        self._fields = fields._fields
        self._path = path

    def rotate_record(self, table: str, record: dict[str, object]) -> dict[str, object] | None:
        if record.get("id") == "u1":
            row = self.encrypt_record(table, {"id": "u1", "ssn": "777-77-7777", "email": "n@x"})
            app = sqlite3.connect(self._path, isolation_level=None)
            app.execute(
                "UPDATE users SET ssn = ?, email = ?, email_bidx = ? WHERE id = 'u1'",
                (row["ssn"], row["email"], row["email_bidx"]),
            )
            app.close()
        return super().rotate_record(table, record)


def test_rotation_compare_and_set_skips_rows_changed_meanwhile(tmp_path: Path) -> None:
    """A row the app rewrites between the rotation's read and write is a conflict, not a loss."""
    master = b"m" * 32
    path = tmp_path / "d.db"
    conn = _db(path, _fields(master, 1), 3)
    fields = _AppWritesDuringRotation(_fields(master, 2), path)
    report = rotate_sqlite_table(conn, fields, "users", batch_size=1)
    assert (report.rotated, report.conflicts) == (2, 1)
    row = conn.execute("SELECT id, ssn FROM users WHERE id = 'u1'").fetchone()
    assert fields.decrypt_record("users", {"id": row[0], "ssn": row[1]})["ssn"] == "777-77-7777"


def test_rotation_stops_on_a_value_that_does_not_decrypt(tmp_path: Path) -> None:
    """A tampered value aborts its batch with InvalidToken; nothing of that batch is written."""
    master = b"m" * 32
    conn = _db(tmp_path / "c.db", _fields(master, 1), 3)
    with conn:
        conn.execute(
            "UPDATE users SET ssn = (SELECT ssn FROM users WHERE id = 'u0') WHERE id = 'u2'"
        )
    fields = _fields(master, 2)
    with pytest.raises(InvalidToken):
        rotate_sqlite_table(conn, fields, "users", batch_size=10)
    assert _key_ids(conn, fields) == {1}


def test_rotation_refuses_unsafe_identifiers(tmp_path: Path) -> None:
    """Table names are identifiers, not parameters: anything but a plain name is refused."""
    fields = FieldEncryption(DataEncryption(keyring=KeyRing(b"m" * 32)))
    fields.register_encrypted_field('users"; DROP TABLE x; --', "ssn")
    with pytest.raises(ConfigurationError, match="identifier"):
        rotate_sqlite_table(sqlite3.connect(":memory:"), fields, 'users"; DROP TABLE x; --')


def test_cli_generate_prints_only_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    """`keys generate` prints one 44-character key and nothing else."""
    assert cli_main(["keys", "generate"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip()) == 44 and out.count("\n") == 1


def test_cli_rotate_sqlite_and_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys rotate --db ... --vault` re-encrypts fields and vault entries, printing counts only."""
    key = generate_master_key()
    master = base64.urlsafe_b64decode(key)
    db = tmp_path / "app.db"
    _db(db, _fields(master, 1), 5).close()
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", key)
    monkeypatch.setenv("PYNOMALY_SECURITY__KEY_VERSION", "2")
    vault = f"sqlite:///{tmp_path / 'tokens.db'}"
    args = ["keys", "rotate", "--db", str(db), "--field", "users.ssn"]
    args += ["--blind-index", "users.email", "--batch-size", "2", "--vault", vault]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert '"rotated": 5' in out and '"target": "token_vault"' in out and "123-45" not in out
    assert _key_ids(sqlite3.connect(db), _fields(master, 2)) == {2}


def test_cli_rotate_moves_data_off_a_retired_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After PYNOMALY_MASTER_KEY is replaced and the old key listed in RETIRED_MASTER_KEYS,
    `keys rotate` rewrites every row (same version) so the new key alone reads them."""
    old, new = generate_master_key(), generate_master_key()
    db = tmp_path / "app.db"
    _db(db, _fields(base64.urlsafe_b64decode(old), 1), 3).close()
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", new)
    monkeypatch.setenv("PYNOMALY_SECURITY__RETIRED_MASTER_KEYS", old)
    monkeypatch.setenv("PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM", "aes_gcm")
    args = ["keys", "rotate", "--db", str(db), "--field", "users.ssn"]
    assert cli_main([*args, "--blind-index", "users.email"]) == 0
    assert '"rotated": 3' in capsys.readouterr().out
    alone = _fields(base64.urlsafe_b64decode(new), 1)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, ssn, email, email_bidx FROM users ORDER BY id").fetchall()
    for row in rows:
        record = dict(zip(("id", "ssn", "email", "email_bidx"), row, strict=True))
        assert alone.decrypt_record("users", record)["ssn"].startswith("123-45-")
        assert record["email_bidx"] == alone.blind_index("users", "email", f"{row[0]}@example.com")


def test_cli_rotate_without_master_key_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rotation never runs on an invented key, even in development mode."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    monkeypatch.setenv("PYNOMALY_SECURITY__DEVELOPMENT_MODE", "true")
    assert cli_main(["keys", "rotate", "--vault"]) == 1
    assert "PYNOMALY_MASTER_KEY" in capsys.readouterr().err


def test_example_runs(tmp_path: Path) -> None:
    """examples/field_encryption_sqlite.py encrypts, rotates and finds users by blind index."""
    namespace = runpy.run_path(str(EXAMPLE))
    result = namespace["main"](str(tmp_path / "users.db"), generate_master_key())
    assert result["stored_ssn"].startswith("pn1.")
    assert result["read_after_key_bump"] == {"Ada": "123-45-6789", "Bob": "234-56-7890"}
    assert result["rotated"] == 1 and result["found_after_retiring_key_1"] == ["Ada"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_status_counts_versions_and_reports_due_rotation(tmp_path: Path) -> None:
    """status counts values per key id, records the version's age, and is due after N days."""
    key = generate_master_key()
    master = base64.urlsafe_b64decode(key)
    db = tmp_path / "app.db"
    _db(db, _fields(master, 1), 4).close()
    argv = [
        "keys",
        "status",
        "--db",
        str(db),
        "--field",
        "users.ssn",
        "--blind-index",
        "users.email",
    ]
    settings = SecuritySettings(_env_file=None, master_key=key, key_version=2, key_rotation_days=30)  # type: ignore[call-arg]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    before = keys_cli.status(_parse(argv), settings, now=t0)
    assert before["values_by_key_version"] == {"sqlite:users": {"1": 8}}
    assert before["current_version_since"] == t0.isoformat() and not before["rotation_due"]
    assert before["master_key_id"] == KeyRing(master).master_ids[0]
    assert before["retired_master_key_ids"] == []
    conn = sqlite3.connect(db)
    rotate_sqlite_table(conn, _fields(master, 2), "users")
    conn.close()
    later = keys_cli.status(_parse(argv), settings, now=t0 + dt.timedelta(days=31))
    assert later["values_by_key_version"] == {"sqlite:users": {"2": 8}}
    assert later["current_version_since"] == t0.isoformat() and later["rotation_due"]


def test_cli_status_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys status` prints one JSON object and exits 0 when no rotation is due."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", generate_master_key())
    vault = f"sqlite:///{tmp_path / 'tokens.db'}"
    assert cli_main(["keys", "status", "--vault", vault]) == 0
    assert '"token_vault": {}' in capsys.readouterr().out
