"""SQL shared by the SQLite and PostgreSQL stores (parametrized, one place).

Table names come from a validated prefix (``check_prefix``), never from
input, so formatting them into statements is safe; every value is a bound
parameter. That is why S608 is silenced for this file only.
"""
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pynomaly_security.audit.batch import ACCESS_BATCH, MAX_SPAN_US
from pynomaly_security.audit.stores.base import Checkpoint, RecordFilter, SealedRecord
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.sql_state import numbered as numbered_placeholders

__all__ = [
    "COLUMNS",
    "MANY",
    "Statements",
    "check_prefix",
    "chunks",
    "filter_sql",
    "record_values",
    "to_checkpoint",
    "to_record",
]

_MANY = 200
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

COLUMNS = (
    "seq, ts_us, kind, event_type, level, standards, request_id, subject_ref, key_id,"
    " payload, personal, prev_hash, hash, tenant, tenant_seq"
)

_SQLITE_SELECT = (
    "seq, ts_us, kind, event_type, level, standards, request_id, subject_ref, key_id,"
    " CAST(payload AS BLOB), CAST(personal AS BLOB), CAST(prev_hash AS BLOB), CAST(hash AS BLOB),"
    " tenant, tenant_seq"
)
TENANT_COLUMNS = (("tenant", "TEXT"), ("tenant_seq", "BIGINT"))
"""Added by issue 21: a store created before gets them at its next writable open."""


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ConfigurationError(
            f"audit table prefix {prefix!r} must match {_PREFIX.pattern} (lowercase SQL identifier)"
        )
    return prefix


def filter_sql(
    flt: RecordFilter, mark: str = "?", index: str | None = None
) -> tuple[str, list[object]]:
    """WHERE clause and parameters; ``mark`` is ``?`` or ``$`` (numbered);
    ``index`` is the subject index table (None: an old store without one)."""
    parts: list[str] = []
    params: list[object] = []

    def p(value: object) -> str:
        params.append(value)
        return "?" if mark == "?" else f"${len(params)}"

    if flt.since_us is not None:
        # A batch's ts_us is its oldest row; its rows reach MAX_SPAN_US later.
        parts.append(
            f"(ts_us >= {p(flt.since_us)} OR (kind = {p(ACCESS_BATCH)}"
            f" AND ts_us >= {p(flt.since_us - MAX_SPAN_US)}))"
        )
    if flt.until_us is not None:
        parts.append(f"ts_us < {p(flt.until_us)}")
    if flt.event_type is not None:
        parts.append(f"event_type = {p(flt.event_type)}")
    if flt.tenant is not None:
        parts.append(f"tenant = {p(flt.tenant)}")
    if flt.standard is not None:
        parts.append(f"standards LIKE {p('%,' + flt.standard + ',%')}")
    if flt.subject_refs is not None:
        refs = flt.subject_refs or ("",)
        match = "subject_ref IN (" + ", ".join(p(r) for r in refs) + ")"
        if index is not None:
            match += f" OR seq IN (SELECT seq FROM {index} WHERE ref IN ("
            match += ", ".join(p(r) for r in refs) + "))"
        else:  # no index table: every batch is a candidate, the reader filters its rows
            match += f" OR kind = {p(ACCESS_BATCH)}"
        parts.append(f"({match})")
    if flt.after is not None:
        ts, seq = flt.after
        parts.append(f"(ts_us > {p(ts)} OR (ts_us = {p(ts)} AND seq > {p(seq)}))")
    where = (" WHERE " + " AND ".join(parts)) if parts else ""
    order = "ts_us, seq" if flt.by_time else "seq"
    return f"{where} ORDER BY {order} LIMIT {p(flt.limit)} OFFSET {p(flt.offset)}", params


def to_record(row: Sequence[Any]) -> SealedRecord:
    r = tuple(row)
    return SealedRecord(
        seq=int(r[0]),
        ts_us=int(r[1]),
        kind=str(r[2]),
        event_type=str(r[3]),
        level=str(r[4]),
        standards=str(r[5]),
        request_id=None if r[6] is None else str(r[6]),
        subject_ref=None if r[7] is None else str(r[7]),
        key_id=str(r[8]),
        payload=bytes(r[9]),
        personal=None if r[10] is None else bytes(r[10]),
        prev_hash=bytes(r[11]),
        hash=bytes(r[12]),
        tenant=None if r[13] is None else str(r[13]),
        tenant_seq=None if r[14] is None else int(r[14]),
    )


def to_checkpoint(row: Sequence[Any]) -> Checkpoint:
    r = tuple(row)
    return Checkpoint(
        seq=int(r[0]),
        head_hash=bytes(r[1]),
        ts_us=int(r[2]),
        key_id=str(r[3]),
        signature=bytes(r[4]),
    )


def record_values(rec: SealedRecord) -> tuple[object, ...]:
    return (
        rec.seq,
        rec.ts_us,
        rec.kind,
        rec.event_type,
        rec.level,
        rec.standards,
        rec.request_id,
        rec.subject_ref,
        rec.key_id,
        rec.payload,
        rec.personal,
        rec.prev_hash,
        rec.hash,
        rec.tenant,
        rec.tenant_seq,
    )


class Statements:
    """Every statement of one store, with ``?`` placeholders or ``$n`` (PostgreSQL)."""

    def __init__(self, prefix: str, *, numbered: bool = False) -> None:
        t = check_prefix(prefix)
        self.numbered = numbered
        self.records, self.checkpoints = f"{t}_records", f"{t}_checkpoints"
        self.subject_keys, self.public_keys = f"{t}_subject_keys", f"{t}_public_keys"
        self.record_subjects = f"{t}_record_subjects"
        # None when a read-only open finds an older store without the index table.
        self.subject_index: str | None = self.record_subjects

        def q(sql: str) -> str:
            return numbered_placeholders(sql) if numbered else sql

        cp_cols = "seq, head_hash, ts_us, key_id, signature"
        # SQLite columns are dynamically typed: a tampered BLOB may come back as
        # TEXT, so read hash and ciphertext columns as BLOB whatever was written.
        cols = COLUMNS if numbered else _SQLITE_SELECT
        self.select_after = q(
            f"SELECT {cols} FROM {self.records} WHERE seq > ? ORDER BY seq LIMIT ?"
        )
        self.select_records = f"SELECT {cols} FROM {self.records}"
        self.head = f"SELECT seq, hash FROM {self.records} ORDER BY seq DESC LIMIT 1"
        self.select_checkpoints = f"SELECT {cp_cols} FROM {self.checkpoints} ORDER BY seq"
        self.last_checkpoint = f"SELECT {cp_cols} FROM {self.checkpoints} ORDER BY seq DESC LIMIT 1"
        self.insert_record = q(
            f"INSERT INTO {self.records} ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
        )
        self.insert_checkpoint = q(
            f"INSERT INTO {self.checkpoints} ({cp_cols}) VALUES (?, ?, ?, ?, ?)"
        )
        self.delete_checkpoint = q(f"DELETE FROM {self.checkpoints} WHERE seq = ?")
        self.select_subject_key = q(
            f"SELECT ref, key_id, wrapped FROM {self.subject_keys} WHERE ref = ?"
        )
        # Up to _MANY refs per statement (SQLite's default variable limit is 999).
        self.select_subject_keys = q(
            f"SELECT ref, key_id, wrapped FROM {self.subject_keys}"
            f" WHERE ref IN ({', '.join('?' * _MANY)})"
        )
        self.insert_subject_index = q(
            f"INSERT INTO {self.record_subjects} (ref, seq) VALUES (?, ?) ON CONFLICT DO NOTHING"
        )
        self.prune_subject_index = q(f"DELETE FROM {self.record_subjects} WHERE seq <= ?")
        self.insert_subject_key = q(
            f"INSERT INTO {self.subject_keys} (ref, key_id, wrapped) VALUES (?, ?, ?)"
        )
        self.delete_subject_key = q(f"DELETE FROM {self.subject_keys} WHERE ref = ?")
        self.select_public_keys = f"SELECT key_id, public_key FROM {self.public_keys}"
        self.insert_public_key = q(
            f"INSERT INTO {self.public_keys} (key_id, public_key) VALUES (?, ?)"
            " ON CONFLICT (key_id) DO NOTHING"
        )
        self.prune = q(f"DELETE FROM {self.records} WHERE seq <= ?")
        self.tenant_refs = q(
            f"SELECT DISTINCT subject_ref FROM {self.records} WHERE tenant = ?"
            " AND subject_ref IS NOT NULL AND event_type <> 'subject_erased'"
            f" UNION SELECT DISTINCT i.ref FROM {self.record_subjects} i"
            f" JOIN {self.records} r ON r.seq = i.seq WHERE r.tenant = ?"
        )
        self.tenant_heads = q(
            f"SELECT tenant, MAX(tenant_seq) FROM {self.records}"
            f" WHERE tenant IN ({', '.join('?' * _MANY)}) GROUP BY tenant"
        )
        self.table_exists = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"

    def schema(self, blob: str, bigint: str) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {self.records} (
              seq {bigint} PRIMARY KEY, ts_us {bigint} NOT NULL, kind TEXT NOT NULL,
              event_type TEXT NOT NULL, level TEXT NOT NULL, standards TEXT NOT NULL,
              request_id TEXT, subject_ref TEXT, key_id TEXT NOT NULL, payload {blob} NOT NULL,
              personal {blob}, prev_hash {blob} NOT NULL, hash {blob} NOT NULL,
              tenant TEXT, tenant_seq {bigint})""",
            f"CREATE INDEX IF NOT EXISTS {self.records}_ts ON {self.records} (ts_us)",
            f"CREATE INDEX IF NOT EXISTS {self.records}_subject ON {self.records} (subject_ref)",
            f"""CREATE TABLE IF NOT EXISTS {self.checkpoints} (
              seq {bigint} PRIMARY KEY, head_hash {blob} NOT NULL, ts_us {bigint} NOT NULL,
              key_id TEXT NOT NULL, signature {blob} NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {self.subject_keys} (
              ref TEXT PRIMARY KEY, key_id TEXT NOT NULL, wrapped {blob} NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {self.public_keys} (
              key_id TEXT PRIMARY KEY, public_key {blob} NOT NULL)""",
            # Lookup aid for query(user_id=...) over access batches; not chained.
            f"""CREATE TABLE IF NOT EXISTS {self.record_subjects} (
              ref TEXT NOT NULL, seq {bigint} NOT NULL, PRIMARY KEY (ref, seq))""",
        ]

    def add_tenant_columns(self, missing: Sequence[str], bigint: str, guard: str = "") -> list[str]:
        """Statements giving an older records table the tenant columns it lacks, and
        their index (run after :meth:`schema`); ``guard`` is PostgreSQL's
        ``IF NOT EXISTS`` (SQLite has none: it is given only the missing ones)."""
        out = [
            f"ALTER TABLE {self.records} ADD COLUMN {guard}{name}"
            f" {bigint if kind == 'BIGINT' else kind}"
            for name, kind in TENANT_COLUMNS
            if name in missing
        ]
        out.append(
            f"CREATE INDEX IF NOT EXISTS {self.records}_tenant"
            f" ON {self.records} (tenant, tenant_seq)"
        )
        return out

    def query(self, flt: RecordFilter) -> tuple[str, list[object]]:
        where, params = filter_sql(flt, "$" if self.numbered else "?", self.subject_index)
        return self.select_records + where, params


MANY = _MANY


def chunks(refs: Sequence[str]) -> list[list[str]]:
    """``refs`` in groups of exactly MANY (the last padded with "" which never matches)."""
    out = []
    for i in range(0, len(refs), _MANY):
        group = list(refs[i : i + _MANY])
        out.append(group + [""] * (_MANY - len(group)))
    return out
