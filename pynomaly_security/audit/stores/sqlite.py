"""The audit trail's SQL on SQLite (``storage/sqlite.py`` owns the file's connection).

Every call runs on the file's one thread, so the event loop never blocks on
disk. Appends use ``BEGIN IMMEDIATE``, which takes SQLite's write lock before
the head is read, so several processes sharing the file still extend one chain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from pynomaly_security.audit.stores._sql import (
    TENANT_COLUMNS,
    Statements,
    chunks,
    record_values,
    to_checkpoint,
    to_record,
)
from pynomaly_security.audit.stores.base import Checkpoint, RecordFilter, SealedRecord
from pynomaly_security.exceptions import StorageError
from pynomaly_security.storage._shared import Lease

if TYPE_CHECKING:
    from pynomaly_security.storage.sqlite import InTransaction, SQLiteBackend

__all__ = ["SQLiteAuditStore"]

T = TypeVar("T")
_ZERO = bytes(32)


class SQLiteAuditStore:
    """Args:
    backend: the SQLite file (``StorageRegistry.audit_log("sqlite:///<path>")``); a
        backend with ``create=False`` (the verifier and exporter) neither creates
        the tables nor reports an empty new database as a valid trail.
    prefix: table name prefix (lets tests and tenants share a file).
    """

    def __init__(self, backend: SQLiteBackend, *, prefix: str = "audit") -> None:
        self.backend = backend
        self._lease = Lease(backend.connection)
        self.sql = Statements(prefix)
        self._open = False

    async def __aenter__(self) -> SQLiteAuditStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the file's thread."""
        if not self._open:
            raise StorageError("the SQLite audit store is not open")
        return await (await self._lease.get()).run(fn)

    async def open(self) -> None:
        if self._open:
            return
        connection = await self._lease.get()
        sql, path = self.sql, self.backend.path

        def prepare(conn: sqlite3.Connection) -> None:
            if connection.create:
                for statement in sql.schema("BLOB", "INTEGER"):
                    conn.execute(statement)
            elif conn.execute(sql.table_exists, (sql.records,)).fetchone() is None:
                raise StorageError(f"{path!r} holds no audit trail ({sql.records})")
            exists = conn.execute(sql.table_exists, (sql.record_subjects,)).fetchone()
            if exists is None:  # a read-only open of a store older than access batches
                sql.subject_index = None
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({sql.records})")}
            missing = [name for name, _ in TENANT_COLUMNS if name not in have]
            for statement in sql.add_tenant_columns(missing, "INTEGER"):
                conn.execute(statement)

        try:
            await connection.run(prepare)
        except StorageError:
            await self._lease.release()
            raise
        self._open = True

    async def aclose(self) -> None:
        """Give back this store's use of the file (the last user closes it)."""
        self._open = False
        await self._lease.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SQLiteTxn]:
        if not self._open:
            raise StorageError("the SQLite audit store is not open")
        # IMMEDIATE takes the write lock now, before the head is read.
        async with (await self._lease.get()).transaction() as txn:
            yield _SQLiteTxn(txn, self.sql)

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        sql = self.sql.select_after
        rows = await self.run(lambda c: c.execute(sql, (after_seq, limit)).fetchall())
        return [to_record(r) for r in rows]

    async def query(self, flt: RecordFilter) -> list[SealedRecord]:
        sql, params = self.sql.query(flt)
        rows = await self.run(lambda c: c.execute(sql, params).fetchall())
        return [to_record(r) for r in rows]

    async def checkpoints(self) -> list[Checkpoint]:
        sql = self.sql.select_checkpoints
        rows = await self.run(lambda c: c.execute(sql).fetchall())
        return [to_checkpoint(r) for r in rows]

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        return await self.run(lambda c: _subject_keys(c, self.sql, refs))

    async def delete_subject_keys(self, refs: Sequence[str]) -> int:
        sql = self.sql.delete_subject_key

        def delete(c: sqlite3.Connection) -> int:
            n = sum(c.execute(sql, (r,)).rowcount for r in refs)
            # Checkpoint the WAL so the deleted key bytes leave the log file too.
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return n

        return await self.run(delete)

    async def tenant_subject_refs(self, tenant: str) -> list[str]:
        sql = self.sql.tenant_refs
        rows = await self.run(lambda c: c.execute(sql, (tenant, tenant)).fetchall())
        return sorted(str(r[0]) for r in rows)

    async def public_keys(self) -> dict[str, bytes]:
        sql = self.sql.select_public_keys
        rows = await self.run(lambda c: c.execute(sql).fetchall())
        return {str(k): bytes(v) for k, v in rows}

    async def put_public_key(self, key_id: str, public_key: bytes) -> None:
        sql = self.sql.insert_public_key
        await self.run(lambda c: c.execute(sql, (key_id, public_key)))

    async def prune(self, through_seq: int) -> int:
        sql, index = self.sql.prune, self.sql.prune_subject_index

        def prune(c: sqlite3.Connection) -> int:
            if self.sql.subject_index is not None:
                c.execute(index, (through_seq,))
            return int(c.execute(sql, (through_seq,)).rowcount)

        return await self.run(prune)


def _subject_keys(
    c: sqlite3.Connection, sql: Statements, refs: Sequence[str]
) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for group in chunks(refs):
        for row in c.execute(sql.select_subject_keys, group):
            out[str(row[0])] = (str(row[1]), bytes(row[2]))
    return out


class _SQLiteTxn:
    def __init__(self, txn: InTransaction, sql: Statements) -> None:
        self._s, self._sql = txn, sql

    async def head(self) -> tuple[int, bytes]:
        sql = self._sql

        def head(c: sqlite3.Connection) -> tuple[int, bytes]:
            row = c.execute(sql.head).fetchone()
            if row is None:
                row = c.execute(sql.last_checkpoint).fetchone()
            return (0, _ZERO) if row is None else (int(row[0]), bytes(row[1]))

        return await self._s.run(head)

    async def last_checkpoint(self) -> Checkpoint | None:
        row = await self._s.run(lambda c: c.execute(self._sql.last_checkpoint).fetchone())
        return None if row is None else to_checkpoint(row)

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        return await self._s.run(lambda c: _subject_keys(c, self._sql, refs))

    async def put_subject_keys(self, items: Sequence[tuple[str, str, bytes]]) -> None:
        await self._s.run(lambda c: c.executemany(self._sql.insert_subject_key, items))

    async def insert(self, records: Sequence[SealedRecord]) -> None:
        values = [record_values(r) for r in records]
        await self._s.run(lambda c: c.executemany(self._sql.insert_record, values))

    async def index_subjects(self, items: Sequence[tuple[str, int]]) -> None:
        await self._s.run(lambda c: c.executemany(self._sql.insert_subject_index, items))

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        cp = checkpoint
        values = (cp.seq, cp.head_hash, cp.ts_us, cp.key_id, cp.signature)
        await self._s.run(lambda c: c.execute(self._sql.insert_checkpoint, values))

    async def delete_checkpoint(self, seq: int) -> None:
        await self._s.run(lambda c: c.execute(self._sql.delete_checkpoint, (seq,)))

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        sql = self._sql.select_after
        rows = await self._s.run(lambda c: c.execute(sql, (after_seq, limit)).fetchall())
        return [to_record(r) for r in rows]

    async def tenant_heads(self, tenants: Sequence[str]) -> dict[str, int]:
        sql = self._sql.tenant_heads

        def heads(c: sqlite3.Connection) -> dict[str, int]:
            return {str(t): int(n) for group in chunks(tenants) for t, n in c.execute(sql, group)}

        return await self._s.run(heads)
