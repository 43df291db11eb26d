"""PostgreSQL (``postgresql://``, ``postgres://``): durable state shared by every worker
and host (``pip install 'pynomaly-security[postgres]'``, asyncpg).

:class:`PostgresBackend` owns one asyncpg pool per URL, shared by every
capability on the URL:

    audit_log()    ``audit.stores.postgres.PostgresAuditStore`` (the audit trail's SQL)
    token_vault()  ``protection.vault.postgres.PostgresTokenVault``
    state()        ``storage.sql_state.SQLState``: the monitor's alerts, activity
                   and counters, shared by every worker and durable

It has no counters, sliding windows, key-value records or member sets yet (use
``redis://`` for state every request touches).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.storage._shared import Lease, Shared
from pynomaly_security.storage.base import BackendOptions
from pynomaly_security.storage.sql_state import POSTGRES, SQLState, numbered

if TYPE_CHECKING:
    from pynomaly_security.audit.stores.postgres import PostgresAuditStore
    from pynomaly_security.protection.vault.postgres import PostgresTokenVault

__all__ = ["PostgresBackend"]


class PostgresBackend:
    """One PostgreSQL database and its connection pool.

    Args:
        url: ``postgresql://user@host:port/db``.
        options: ``pool_size`` (most connections), ``client_name`` (``application_name``).

    ``errors`` are the driver's exceptions a capability wraps as ``StorageError``:
    server errors, protocol/connection errors, and socket errors.
    """

    shared = True

    def __init__(self, url: str, options: BackendOptions) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")
        if options.pool_size < 1:
            raise ConfigurationError(f"pool_size must be >= 1, got {options.pool_size}")
        try:
            import asyncpg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "PostgreSQL needs asyncpg: pip install 'pynomaly-security[postgres]'"
            ) from exc
        self._asyncpg: Any = asyncpg
        self.errors: tuple[type[Exception], ...] = (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
        )
        self.url = url
        self.options = options
        self.connection: Shared[Any] = Shared(self._connect, self._disconnect)

    async def _connect(self) -> Any:
        try:
            return await self._asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.options.pool_size,
                server_settings={"application_name": self.options.client_name},
            )
        except self.errors as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc

    @staticmethod
    async def _disconnect(pool: Any) -> None:
        await pool.close()

    async def healthcheck(self) -> bool:
        return await self.connection.check(lambda pool: pool.fetchval("SELECT 1"))

    # -- capabilities --------------------------------------------------------------------------
    def audit_log(self, *, prefix: str = "audit") -> PostgresAuditStore:
        """The audit trail in tables named ``<prefix>_*`` (one chain per prefix)."""
        from pynomaly_security.audit.stores.postgres import PostgresAuditStore

        return PostgresAuditStore(self, prefix=prefix)

    def token_vault(self, *, table: str = "pynomaly_token_vault") -> PostgresTokenVault:
        """The token vault in ``table``."""
        from pynomaly_security.protection.vault.postgres import PostgresTokenVault

        return PostgresTokenVault(self, table=table)

    def state(self, *, prefix: str = "pns") -> SQLState:
        """The monitor's state (documents, logs, tallies) in tables named ``<prefix>_*``."""
        return SQLState(_PostgresSessions(self), POSTGRES, prefix=prefix)


class _PostgresSession:
    """:class:`~pynomaly_security.storage.sql_state.SQLSession` on one pooled connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._conn.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._conn.fetch(numbered(sql), *args)]

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        return [tuple(row) for row in await self._conn.fetchmany(numbered(sql), rows)]


class _PostgresSessions:
    """:class:`~pynomaly_security.storage.sql_state.SQLSessions` on the URL's pool; the
    driver's errors come out as ``StorageError``."""

    def __init__(self, backend: PostgresBackend) -> None:
        self._lease: Lease[Any] = Lease(backend.connection)
        self._errors = backend.errors

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            pool = await self._lease.get()
            async with pool.acquire() as conn:
                yield conn
        except self._errors as exc:
            # The type only: a server message may quote the row's values.
            raise StorageError(f"PostgreSQL state failed: {type(exc).__name__}") from exc

    @asynccontextmanager
    async def transaction(self, lock: int | None = None) -> AsyncIterator[_PostgresSession]:
        async with self._connection() as conn, conn.transaction():
            if lock is not None:  # released by the commit (or the rollback)
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
            yield _PostgresSession(conn)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[_PostgresSession]:
        async with self._connection() as conn:
            yield _PostgresSession(conn)
