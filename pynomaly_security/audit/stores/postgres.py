"""The audit trail's SQL on PostgreSQL (``storage/postgres.py`` owns the pool).

Appends run in one transaction holding ``pg_advisory_xact_lock`` on a key
derived from the table prefix: every worker of every process serializes on
it, reads the head, extends the chain and commits, so many workers writing
one database keep one valid chain. The lock is released by the commit.

References:
    PostgreSQL docs, "Advisory Locks" (9.27.10).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

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
    from pynomaly_security.storage.postgres import PostgresBackend

__all__ = ["PostgresAuditStore"]

_ZERO = bytes(32)


class PostgresAuditStore:
    """Args:
    backend: the database (``StorageRegistry.audit_log("postgresql://...")``).
    prefix: table name prefix (one chain per prefix).
    """

    def __init__(self, backend: PostgresBackend, *, prefix: str = "audit") -> None:
        self.backend = backend
        self._lease: Lease[Any] = Lease(backend.connection)
        self._errors = backend.errors
        self.sql = Statements(prefix, numbered=True)
        digest = hashlib.sha256(f"pynomaly-audit:{prefix}".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._pool: Any = None

    async def __aenter__(self) -> PostgresAuditStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _wrap(self, exc: Exception) -> StorageError:
        return StorageError(f"PostgreSQL audit store: {type(exc).__name__}: {exc}")

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await self._lease.get()
        try:
            async with pool.acquire() as conn, conn.transaction():
                # Schema creation races between workers; the advisory lock orders it.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
                for statement in self.sql.schema("BYTEA", "BIGINT"):
                    await conn.execute(statement)
                names = [name for name, _ in TENANT_COLUMNS]
                for statement in self.sql.add_tenant_columns(names, "BIGINT", "IF NOT EXISTS "):
                    await conn.execute(statement)
        except self._errors as exc:
            await self._lease.release()
            raise self._wrap(exc) from exc
        self._pool = pool

    async def aclose(self) -> None:
        """Give back this store's use of the pool (the last user closes it)."""
        self._pool = None
        await self._lease.release()

    def _need_pool(self) -> Any:
        if self._pool is None:
            raise StorageError("the PostgreSQL audit store is not open")
        return self._pool

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        try:
            return list(await self._need_pool().fetch(sql, *args))
        except self._errors as exc:
            raise self._wrap(exc) from exc

    async def _execute(self, sql: str, *args: object) -> str:
        try:
            return str(await self._need_pool().execute(sql, *args))
        except self._errors as exc:
            raise self._wrap(exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTxn]:
        try:
            async with self._need_pool().acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
                yield _PostgresTxn(conn, self.sql)
        except self._errors as exc:
            raise self._wrap(exc) from exc

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        return [to_record(r) for r in await self._fetch(self.sql.select_after, after_seq, limit)]

    async def query(self, flt: RecordFilter) -> list[SealedRecord]:
        sql, params = self.sql.query(flt)
        return [to_record(r) for r in await self._fetch(sql, *params)]

    async def checkpoints(self) -> list[Checkpoint]:
        return [to_checkpoint(r) for r in await self._fetch(self.sql.select_checkpoints)]

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        out: dict[str, tuple[str, bytes]] = {}
        for group in chunks(refs):
            for row in await self._fetch(self.sql.select_subject_keys, *group):
                out[row[0]] = (row[1], bytes(row[2]))
        return out

    async def delete_subject_keys(self, refs: Sequence[str]) -> int:
        deleted = 0
        for ref in refs:
            status = await self._execute(self.sql.delete_subject_key, ref)
            deleted += int(status.rsplit(" ", 1)[-1])
        return deleted

    async def tenant_subject_refs(self, tenant: str) -> list[str]:
        return sorted(str(r[0]) for r in await self._fetch(self.sql.tenant_refs, tenant, tenant))

    async def public_keys(self) -> dict[str, bytes]:
        return {r[0]: bytes(r[1]) for r in await self._fetch(self.sql.select_public_keys)}

    async def put_public_key(self, key_id: str, public_key: bytes) -> None:
        await self._execute(self.sql.insert_public_key, key_id, public_key)

    async def prune(self, through_seq: int) -> int:
        try:
            async with self._need_pool().acquire() as conn, conn.transaction():
                await conn.execute(self.sql.prune_subject_index, through_seq)
                status = str(await conn.execute(self.sql.prune, through_seq))
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return int(status.rsplit(" ", 1)[-1])

    async def drop(self) -> None:
        """Drop this prefix's tables (tests and decommissioning)."""
        for table in (
            self.sql.records,
            self.sql.checkpoints,
            self.sql.subject_keys,
            self.sql.public_keys,
            self.sql.record_subjects,
        ):
            await self._execute(f"DROP TABLE IF EXISTS {table}")


class _PostgresTxn:
    def __init__(self, conn: Any, sql: Statements) -> None:
        self._c, self._sql = conn, sql

    async def head(self) -> tuple[int, bytes]:
        row = await self._c.fetchrow(self._sql.head)
        if row is None:
            row = await self._c.fetchrow(self._sql.last_checkpoint)
        return (0, _ZERO) if row is None else (int(row[0]), bytes(row[1]))

    async def last_checkpoint(self) -> Checkpoint | None:
        row = await self._c.fetchrow(self._sql.last_checkpoint)
        return None if row is None else to_checkpoint(row)

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        out: dict[str, tuple[str, bytes]] = {}
        for group in chunks(refs):
            for row in await self._c.fetch(self._sql.select_subject_keys, *group):
                out[row[0]] = (row[1], bytes(row[2]))
        return out

    async def put_subject_keys(self, items: Sequence[tuple[str, str, bytes]]) -> None:
        await self._c.executemany(self._sql.insert_subject_key, items)

    async def insert(self, records: Sequence[SealedRecord]) -> None:
        await self._c.executemany(self._sql.insert_record, [record_values(r) for r in records])

    async def index_subjects(self, items: Sequence[tuple[str, int]]) -> None:
        await self._c.executemany(self._sql.insert_subject_index, items)

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        cp = checkpoint
        await self._c.execute(
            self._sql.insert_checkpoint, cp.seq, cp.head_hash, cp.ts_us, cp.key_id, cp.signature
        )

    async def delete_checkpoint(self, seq: int) -> None:
        await self._c.execute(self._sql.delete_checkpoint, seq)

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        rows = await self._c.fetch(self._sql.select_after, after_seq, limit)
        return [to_record(r) for r in rows]

    async def tenant_heads(self, tenants: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for group in chunks(tenants):
            for row in await self._c.fetch(self._sql.tenant_heads, *group):
                out[row[0]] = int(row[1])
        return out
