"""SQLite audit store: WAL mode, one dedicated thread, ``synchronous=FULL``.

Every call runs on one single-thread executor owning the connection, so the
event loop never blocks on disk and calls are naturally serialized. Appends
use ``BEGIN IMMEDIATE``, which takes SQLite's write lock before the head is
read, so several processes sharing the file still extend one chain.
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from pynomaly_security.audit.stores._sql import (
    Statements,
    chunks,
    record_values,
    to_checkpoint,
    to_record,
)
from pynomaly_security.audit.stores.base import Checkpoint, RecordFilter, SealedRecord
from pynomaly_security.exceptions import ConfigurationError, StorageError

__all__ = ["SQLiteAuditStore"]

T = TypeVar("T")
_ZERO = bytes(32)


def sqlite_path(url: str) -> str:
    """``sqlite:///./a.db`` -> ``./a.db``; ``sqlite:////abs/a.db`` -> ``/abs/a.db``."""
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(
            f"audit_db_url {url!r}: expected sqlite:///<path> or sqlite:///:memory:"
        )
    path = url[len("sqlite:///") :]
    if not path:
        raise ConfigurationError(f"audit_db_url {url!r} names no file")
    return path


class SQLiteAuditStore:
    """Args:
    url: ``sqlite:///<path>`` or ``sqlite:///:memory:``.
    prefix: table name prefix (lets tests and tenants share a file).
    create: create the file and tables if missing; ``False`` for the verifier and
        exporter, which must neither write to the evidence nor report an empty
        new database as a valid trail.
    """

    def __init__(self, url: str, *, prefix: str = "audit", create: bool = True) -> None:
        self._path = sqlite_path(url)
        self._create = create
        self.sql = Statements(prefix)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def __aenter__(self) -> SQLiteAuditStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread."""
        if self._executor is None or self._conn is None:
            raise StorageError("the SQLite audit store is not open")
        conn = self._conn

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite audit store: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pynomaly-audit")

        def connect() -> sqlite3.Connection:
            if self._create or self._path == ":memory:":
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            else:
                uri = "file:" + urllib.parse.quote(self._path) + "?mode=rw"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            # Invalid UTF-8 written by hand must reach the verifier (as a hash mismatch),
            # not crash the read.
            conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns (the durability promise);
            # group commit amortizes the fsync. secure_delete overwrites shredded keys.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA secure_delete=ON")
            if self._create:
                for statement in self.sql.schema("BLOB", "INTEGER"):
                    conn.execute(statement)
            elif conn.execute(self.sql.table_exists, (self.sql.records,)).fetchone() is None:
                conn.close()
                raise StorageError(f"{self._path!r} holds no audit trail ({self.sql.records})")
            exists = conn.execute(self.sql.table_exists, (self.sql.record_subjects,)).fetchone()
            if exists is None:  # a read-only open of a store older than access batches
                self.sql.subject_index = None
            return conn

        try:
            loop = asyncio.get_running_loop()
            self._conn = await loop.run_in_executor(self._executor, connect)
        except (sqlite3.Error, StorageError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"cannot open SQLite audit store {self._path!r}: {exc}") from exc

    async def aclose(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor, self._conn = None, None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SQLiteTxn]:
        # IMMEDIATE takes the write lock now, before the head is read.
        await self.run(lambda c: c.execute("BEGIN IMMEDIATE"))
        try:
            yield _SQLiteTxn(self)
        except BaseException:
            await self.run(lambda c: c.execute("ROLLBACK"))
            raise
        await self.run(lambda c: c.execute("COMMIT"))

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
    def __init__(self, store: SQLiteAuditStore) -> None:
        self._s, self._sql = store, store.sql

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
