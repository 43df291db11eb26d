"""SQLite (``sqlite:///path``): durable state with no server, the zero-set-up default.

:class:`SQLiteBackend` owns one connection per file, on one dedicated thread,
shared by every capability on the file:

    audit_log()    ``audit.stores.sqlite.SQLiteAuditStore`` (the audit trail's SQL)
    token_vault()  ``protection.vault.sqlite.SQLiteTokenVault``
    state()        ``storage.sql_state.SQLState``: the monitor's alerts, activity
                   and counters (written from background tasks, never per request)

It has no counters, sliding windows, key-value records or member sets: those
change on every request, and one writer thread per file would queue every
request behind the disk (use ``memory://`` or ``redis://``).

Every call runs on the thread owning the connection, so the event loop never
blocks on disk and calls are naturally serialized. WAL mode, ``synchronous=FULL``
(a commit is on disk when it returns; group commit amortizes the fsync),
``secure_delete`` (deleted keys are overwritten). A :meth:`SQLiteConnection.transaction`
holds the file's write lock (``BEGIN IMMEDIATE``) and keeps every other call of
this process out until it ends, so one capability's statements never land
inside another's transaction.

``sqlite:///./a.db`` is ``./a.db``, ``sqlite:////abs/a.db`` is ``/abs/a.db``,
``sqlite:///:memory:`` a private in-memory database.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.storage._shared import Lease, Shared
from pynomaly_security.storage.base import BackendOptions
from pynomaly_security.storage.sql_state import SQLITE, SQLState

if TYPE_CHECKING:
    from pynomaly_security.audit.stores.sqlite import SQLiteAuditStore
    from pynomaly_security.protection.vault.sqlite import SQLiteTokenVault

__all__ = ["SQLiteBackend", "SQLiteConnection", "sqlite_path"]

T = TypeVar("T")
MEMORY = ":memory:"


def sqlite_path(url: str) -> str:
    """``sqlite:///./a.db`` -> ``./a.db``; ``sqlite:////abs/a.db`` -> ``/abs/a.db``."""
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(f"{url!r}: expected sqlite:///<path> or sqlite:///:memory:")
    path = url[len("sqlite:///") :]
    if not path:
        raise ConfigurationError(f"{url!r} names no file: expected sqlite:///<path>")
    return path


_BUSY_TIMEOUT_MS = 30_000


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting out another process doing the same.

    Turning a new file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once, without the busy handler, while another connection (another worker
    opening the same new file) holds it. WAL is a property of the file: once one
    connection has switched it, the others find it already set.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _select_one(conn: sqlite3.Connection) -> object:
    return conn.execute("SELECT 1").fetchone()


class SQLiteConnection:
    """The open connection of one file and the thread that owns it."""

    def __init__(self, path: str, create: bool) -> None:
        self.path = path
        self.create = create
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pynomaly-sqlite")
        self._conn: sqlite3.Connection | None = None
        # Held by a transaction for its whole length, and briefly by every other call.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            if self.create or self.path == MEMORY:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            else:  # mode=rw: a reader never creates the file it was asked to read
                uri = "file:" + urllib.parse.quote(self.path) + "?mode=rw"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            # Invalid UTF-8 written by hand must reach the audit verifier (as a hash
            # mismatch), not crash the read.
            conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            raise StorageError(f"cannot open SQLite database {self.path!r}: {exc}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError(f"the SQLite database {self.path!r} is not open")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite {self.path!r}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the file's thread, outside any transaction
        (autocommit; it waits for an open transaction to end)."""
        async with self._lock:
            return await self._call(fn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InTransaction]:
        """One ``BEGIN IMMEDIATE`` transaction (the write lock taken before the first
        read, so several processes sharing the file serialize); commit on exit."""
        async with self._lock:
            await self._call(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield InTransaction(self)
            except BaseException:
                await self._call(lambda c: c.execute("ROLLBACK"))
                raise
            await self._call(lambda c: c.execute("COMMIT"))


class InTransaction:
    """Runs statements inside the open transaction of a :class:`SQLiteConnection`."""

    def __init__(self, connection: SQLiteConnection) -> None:
        self._connection = connection

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._connection._call(fn)


class SQLiteBackend:
    """One SQLite file and the one connection (and thread) every capability on it shares.

    Args:
        url: ``sqlite:///<path>`` or ``sqlite:///:memory:``.
        options: ``create`` (``False`` for readers: the file must exist).
    """

    shared = True  # processes on one host that open the file see the same rows

    def __init__(self, url: str, options: BackendOptions) -> None:
        self.path = sqlite_path(url)
        self.url = url
        self.create = options.create
        self.connection: Shared[SQLiteConnection] = Shared(self._connect, self._disconnect)

    @staticmethod
    def key(url: str) -> str:
        """One connection per file: ``./a.db`` and ``a.db`` are the same file."""
        path = sqlite_path(url)
        return url if path == MEMORY else "sqlite:///" + os.path.realpath(path)

    async def _connect(self) -> SQLiteConnection:
        connection = SQLiteConnection(self.path, self.create)
        await connection.open()
        return connection

    @staticmethod
    async def _disconnect(connection: SQLiteConnection) -> None:
        await connection.close()

    async def healthcheck(self) -> bool:
        return await self.connection.check(lambda connection: connection.run(_select_one))

    # -- capabilities --------------------------------------------------------------------------
    def audit_log(self, *, prefix: str = "audit") -> SQLiteAuditStore:
        """The audit trail in tables named ``<prefix>_*``."""
        from pynomaly_security.audit.stores.sqlite import SQLiteAuditStore

        return SQLiteAuditStore(self, prefix=prefix)

    def token_vault(self, *, table: str = "pynomaly_token_vault") -> SQLiteTokenVault:
        """The token vault in ``table``."""
        from pynomaly_security.protection.vault.sqlite import SQLiteTokenVault

        return SQLiteTokenVault(self, table=table)

    def state(self, *, prefix: str = "pns") -> SQLState:
        """The monitor's state (documents, logs, tallies) in tables named ``<prefix>_*``."""
        return SQLState(_SQLiteSessions(self), SQLITE, prefix=prefix)


class _SQLiteSession:
    """:class:`~pynomaly_security.storage.sql_state.SQLSession` on the file's thread."""

    def __init__(self, run: Callable[[Callable[[sqlite3.Connection], Any]], Any]) -> None:
        self._run = run

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run(lambda c: c.execute(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._run(lambda c: c.executemany(sql, rows))

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._run(lambda c: c.execute(sql, args).fetchall())
        return rows

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        # One hop to the file's thread for the whole batch (sqlite3's executemany
        # returns no rows, RETURNING included).
        found: list[tuple[Any, ...]] = await self._run(
            lambda c: [c.execute(sql, row).fetchone() for row in rows]
        )
        return found


class _SQLiteSessions:
    """:class:`~pynomaly_security.storage.sql_state.SQLSessions` on the file's one connection."""

    def __init__(self, backend: SQLiteBackend) -> None:
        self._lease = Lease(backend.connection)

    @asynccontextmanager
    async def transaction(self, lock: int | None = None) -> AsyncIterator[_SQLiteSession]:
        # `lock` is for PostgreSQL: BEGIN IMMEDIATE already holds the file's write lock.
        connection = await self._lease.get()
        async with connection.transaction() as tx:
            yield _SQLiteSession(tx.run)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[_SQLiteSession]:
        connection = await self._lease.get()
        yield _SQLiteSession(connection.run)
