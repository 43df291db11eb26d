"""Field-level encryption with plain SQLite: encrypt, look up by blind index, rotate.

Run it::

    python examples/field_encryption_sqlite.py            # uses a temporary database
    PYNOMALY_MASTER_KEY=... python examples/field_encryption_sqlite.py app.db

Without ``PYNOMALY_MASTER_KEY`` a throw-away key is generated for the demo.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import uuid
from typing import Any

from pynomaly_security.crypto import (
    DataEncryption,
    FieldEncryption,
    generate_master_key,
    normalize_casefold,
    rotate_sqlite_table,
)
from pynomaly_security.settings import SecuritySettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ssn TEXT,
    email TEXT,
    email_bidx TEXT
);
CREATE INDEX IF NOT EXISTS users_email_bidx ON users (email_bidx);
"""


def build_fields(settings: SecuritySettings) -> FieldEncryption:
    """The application's registrations (the same ones `keys rotate` must use)."""
    fields = FieldEncryption(DataEncryption(settings))
    fields.register_encrypted_field("users", "ssn")
    fields.register_encrypted_field(
        "users", "email", blind_index=True, normalize=normalize_casefold
    )
    return fields


def insert_user(conn: sqlite3.Connection, fields: FieldEncryption, user: dict[str, Any]) -> None:
    row = fields.encrypt_record("users", user)
    conn.execute(
        "INSERT INTO users (id, name, ssn, email, email_bidx) VALUES (?, ?, ?, ?, ?)",
        (row["id"], row["name"], row["ssn"], row["email"], row["email_bidx"]),
    )


def find_by_email(
    conn: sqlite3.Connection, fields: FieldEncryption, email: str
) -> list[dict[str, Any]]:
    candidates = fields.blind_index_candidates("users", "email", email)
    marks = ", ".join("?" * len(candidates))
    conn.row_factory = sqlite3.Row
    rows = conn.execute(f"SELECT * FROM users WHERE email_bidx IN ({marks})", candidates)
    found = [fields.decrypt_record("users", dict(row)) for row in rows]
    conn.row_factory = None
    return found


def main(db_path: str, master_key: str) -> dict[str, Any]:
    conn = sqlite3.connect(db_path)
    conn.executescript(SCHEMA)

    # 1. Version 1 of the key: write Ada.
    v1 = SecuritySettings(_env_file=None, master_key=master_key, key_version=1)
    ada = {"id": str(uuid.uuid4()), "name": "Ada", "ssn": "123-45-6789", "email": "Ada@Example.com"}
    with conn:
        insert_user(conn, build_fields(v1), ada)
    stored_ssn = conn.execute("SELECT ssn FROM users WHERE id = ?", (ada["id"],)).fetchone()[0]

    # 2. Rotate: PYNOMALY_SECURITY__KEY_VERSION=2. New rows use key 2, old rows still read.
    v2 = SecuritySettings(_env_file=None, master_key=master_key, key_version=2)
    fields = build_fields(v2)
    bob = {"id": str(uuid.uuid4()), "name": "Bob", "ssn": "234-56-7890", "email": "bob@example.com"}
    with conn:
        insert_user(conn, fields, bob)
    before = {r["name"]: r["ssn"] for r in find_by_email(conn, fields, "ada@example.com")}
    before |= {r["name"]: r["ssn"] for r in find_by_email(conn, fields, "BOB@example.com")}

    # 3. `keys rotate`: re-encrypt what key 1 wrote, then retire key 1.
    report = rotate_sqlite_table(conn, fields, "users", batch_size=100)
    v2_only = SecuritySettings(
        _env_file=None, master_key=master_key, key_version=2, key_min_version=2
    )
    after = [r["name"] for r in find_by_email(conn, build_fields(v2_only), "ada@example.com")]
    conn.close()
    return {
        "stored_ssn": stored_ssn,
        "read_after_key_bump": before,
        "rotated": report.rotated,
        "found_after_retiring_key_1": after,
    }


if __name__ == "__main__":
    key = os.environ.get("PYNOMALY_MASTER_KEY") or generate_master_key()
    with tempfile.TemporaryDirectory() as tmp:
        path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tmp, "users.db")
        for name, value in main(path, key).items():
            print(f"{name}: {value}")
