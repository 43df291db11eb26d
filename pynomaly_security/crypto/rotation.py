"""Re-encrypt stored values with the newest key, in batches (``keys rotate``).

"Stored values" are, concretely:

* encrypted columns of SQLite tables, as registered on a
  :class:`~pynomaly_security.crypto.fields.FieldEncryption` (plus their
  ``_bidx`` blind-index columns) -- :func:`rotate_sqlite_table`;
* the token vault -- :meth:`pynomaly_security.protection.tokenization.Tokenizer.rotate`.

Each batch is one transaction; rows are visited by ``rowid`` (keyset
pagination, so the scan is linear and restartable), and each UPDATE is a
compare-and-set on the old ciphertexts: a row the application rewrote in the
meantime is skipped (it already carries the newest key), never overwritten
with stale data. Running it again is harmless: rows already on the newest key
are left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass

from pynomaly_security.crypto.fields import FieldEncryption
from pynomaly_security.exceptions import ConfigurationError, InvalidToken

__all__ = [
    "RotationReport",
    "count_key_versions",
    "key_version_first_used",
    "rotate_sqlite_table",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(slots=True)
class RotationReport:
    """Counts of one rotation run."""

    scanned: int = 0
    rotated: int = 0
    conflicts: int = 0
    batches: int = 0


def _ident(name: str) -> str:
    # Identifiers cannot be bound parameters; accept only plain names and quote them.
    if not _IDENT.match(name):
        raise ConfigurationError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def rotate_sqlite_table(
    conn: sqlite3.Connection,
    fields: FieldEncryption,
    table: str,
    *,
    batch_size: int = 500,
) -> RotationReport:
    """Re-encrypt the registered fields of ``table`` that use an old key.

    Args:
        conn: an open connection (the table must have a ``rowid``).
        fields: the registrations of ``table``; its key ring's current
            version is the target.
        batch_size: rows per transaction.

    Raises:
        InvalidToken: a stored value does not decrypt (nothing of that batch is written).
    """
    if batch_size < 1:
        raise ConfigurationError("batch_size must be >= 1")
    specs = fields.fields(table)
    if not specs:
        raise ConfigurationError(f"no encrypted fields registered for table {table!r}")
    columns = [s.field for s in specs] + [s.index_column for s in specs if s.blind_index]
    id_columns = {s.record_id_field for s in specs if s.record_id_field}
    select_cols = sorted(set(columns) | id_columns)
    quoted_table = _ident(table)
    select = (
        f"SELECT rowid, {', '.join(_ident(c) for c in select_cols)} FROM {quoted_table} "  # noqa: S608
        "WHERE rowid > ? ORDER BY rowid LIMIT ?"
    )
    update = (
        f"UPDATE {quoted_table} SET {', '.join(f'{_ident(c)} = ?' for c in columns)} "  # noqa: S608
        f"WHERE rowid = ? AND {' AND '.join(f'{_ident(c)} IS ?' for c in columns)}"
    )
    report = RotationReport()
    last = -(2**63)
    while True:
        rows = conn.execute(select, (last, batch_size)).fetchall()
        if not rows:
            return report
        report.batches += 1
        with conn:  # one transaction per batch
            for row in rows:
                last = row[0]
                record = dict(zip(select_cols, row[1:], strict=True))
                report.scanned += 1
                new = fields.rotate_record(table, record)
                if new is None:
                    continue
                params = [new.get(c) for c in columns] + [last] + [record.get(c) for c in columns]
                if conn.execute(update, params).rowcount == 1:
                    report.rotated += 1
                else:
                    report.conflicts += 1


_VERSIONS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pynomaly_key_versions "
    "(key_version INTEGER PRIMARY KEY, first_used_at TEXT NOT NULL)"
)


def key_version_first_used(
    conn: sqlite3.Connection, version: int, *, now: dt.datetime
) -> dt.datetime:
    """When ``version`` was first seen by ``keys rotate``/``keys status`` on this database.

    The key ring itself stores nothing (keys are derived), so the age that
    ``key_rotation_days`` is compared with is recorded here, once per version.
    """
    with conn:
        conn.execute(_VERSIONS_SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO pynomaly_key_versions VALUES (?, ?)", (version, now.isoformat())
        )
    row = conn.execute(
        "SELECT first_used_at FROM pynomaly_key_versions WHERE key_version = ?", (version,)
    ).fetchone()
    return dt.datetime.fromisoformat(row[0])


def count_key_versions(
    conn: sqlite3.Connection, fields: FieldEncryption, table: str
) -> Counter[int]:
    """How many stored values of ``table``'s registered fields use each key version.

    When only the current version is left, ``key_min_version`` can be raised.
    Malformed values are counted under ``0``.
    """
    specs = fields.fields(table)
    counts: Counter[int] = Counter()
    for spec in specs:
        column = _ident(spec.field)
        sql = f"SELECT {column} FROM {_ident(table)} WHERE {column} IS NOT NULL"  # noqa: S608
        for (value,) in conn.execute(sql):
            try:
                counts[fields.encryption.key_id(str(value))] += 1
            except InvalidToken:
                counts[0] += 1
    return counts
