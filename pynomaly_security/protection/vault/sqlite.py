"""The token vault on SQLite (the default): one table on the file's shared connection."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Self, TypeVar

from pynomaly_security.protection.vault.base import VaultEntry, check_table
from pynomaly_security.storage._shared import Lease

if TYPE_CHECKING:
    from pynomaly_security.storage.sqlite import SQLiteBackend

__all__ = ["SQLiteTokenVault"]

T = TypeVar("T")


class SQLiteTokenVault:
    """Token vault in a SQLite file; the table is created on first use.

    Args:
        backend: the file (``StorageRegistry.token_vault("sqlite:///<path>")``).
        table: table name (a plain identifier).
    """

    def __init__(self, backend: SQLiteBackend, *, table: str = "pynomaly_token_vault") -> None:
        self.backend = backend
        self._lease = Lease(backend.connection)
        self._table = check_table(table)
        self._ready = False

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        connection = await self._lease.get()
        if not self._ready:
            # The table name is a validated identifier; values are always parameters.
            schema = (
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                "token TEXT PRIMARY KEY, ciphertext TEXT NOT NULL, fingerprint TEXT UNIQUE)"
            )
            await connection.run(lambda c: c.execute(schema))
            self._ready = True
        return await connection.run(fn)

    def _sql(self, sql: str) -> str:
        return sql.replace("pynomaly_token_vault", self._table)

    def _find(self, c: sqlite3.Connection, fingerprint: str) -> str | None:
        sql = self._sql("SELECT token FROM pynomaly_token_vault WHERE fingerprint = ?")
        row = c.execute(sql, (fingerprint,)).fetchone()
        return None if row is None else str(row[0])

    async def put(self, token: str, ciphertext: str, fingerprint: str | None = None) -> str | None:
        sql = self._sql("INSERT OR IGNORE INTO pynomaly_token_vault VALUES (?, ?, ?)")

        def put(c: sqlite3.Connection) -> str | None:
            if c.execute(sql, (token, ciphertext, fingerprint)).rowcount == 1:
                return token
            return self._find(c, fingerprint) if fingerprint else None

        return await self._run(put)

    async def find(self, fingerprint: str) -> str | None:
        return await self._run(lambda c: self._find(c, fingerprint))

    async def get(self, token: str) -> str | None:
        sql = self._sql("SELECT ciphertext FROM pynomaly_token_vault WHERE token = ?")

        def get(c: sqlite3.Connection) -> str | None:
            row = c.execute(sql, (token,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(get)

    async def delete(self, token: str) -> bool:
        sql = self._sql("DELETE FROM pynomaly_token_vault WHERE token = ?")
        return await self._run(lambda c: c.execute(sql, (token,)).rowcount == 1)

    async def replace(
        self, token: str, old_ciphertext: str, ciphertext: str, fingerprint: str | None
    ) -> bool:
        sql = self._sql(
            "UPDATE pynomaly_token_vault SET ciphertext = ?, fingerprint = ? "
            "WHERE token = ? AND ciphertext = ?"
        )
        values = (ciphertext, fingerprint, token, old_ciphertext)
        return await self._run(lambda c: c.execute(sql, values).rowcount == 1)

    async def entries(self, batch_size: int) -> AsyncIterator[list[VaultEntry]]:
        sql = self._sql(
            "SELECT token, ciphertext, fingerprint FROM pynomaly_token_vault "
            "WHERE token > ? ORDER BY token LIMIT ?"
        )
        last = ""
        while True:

            def page(c: sqlite3.Connection, after: str = last) -> list[VaultEntry]:
                return [VaultEntry(*row) for row in c.execute(sql, (after, batch_size))]

            batch = await self._run(page)
            if not batch:
                return
            last = batch[-1].token
            yield batch

    async def aclose(self) -> None:
        """Give back this vault's use of the file (the last user closes it)."""
        await self._lease.release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
