"""The token vault on PostgreSQL (``storage/postgres.py`` owns the pool)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Self

from pynomaly_security.exceptions import StorageError
from pynomaly_security.protection.vault.base import VaultEntry, check_table
from pynomaly_security.storage._shared import Lease

if TYPE_CHECKING:
    from pynomaly_security.storage.postgres import PostgresBackend

__all__ = ["PostgresTokenVault"]


class PostgresTokenVault:
    """Token vault in PostgreSQL; the table is created on first use.

    Args:
        backend: the database (``StorageRegistry.token_vault("postgresql://...")``).
        table: table name (a plain identifier).
    """

    def __init__(self, backend: PostgresBackend, *, table: str = "pynomaly_token_vault") -> None:
        self.backend = backend
        self._lease: Lease[Any] = Lease(backend.connection)
        self._table = check_table(table)
        self._ready = False

    async def _query(self, method: str, sql: str, *args: Any) -> Any:
        pool = await self._lease.get()
        try:
            if not self._ready:
                await pool.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} ("
                    "token TEXT PRIMARY KEY, ciphertext TEXT NOT NULL, fingerprint TEXT UNIQUE)"
                )
                self._ready = True
            # The table name is a validated identifier; values are always parameters.
            sql = sql.replace("pynomaly_token_vault", self._table)
            return await getattr(pool, method)(sql, *args)
        except self.backend.errors as exc:
            raise StorageError("token vault (postgresql) failed") from exc

    async def put(self, token: str, ciphertext: str, fingerprint: str | None = None) -> str | None:
        stored = await self._query(
            "fetchval",
            "INSERT INTO pynomaly_token_vault VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
            "RETURNING token",
            token,
            ciphertext,
            fingerprint,
        )
        if stored is not None:
            return str(stored)
        return await self.find(fingerprint) if fingerprint else None

    async def find(self, fingerprint: str) -> str | None:
        sql = "SELECT token FROM pynomaly_token_vault WHERE fingerprint = $1"
        result = await self._query("fetchval", sql, fingerprint)
        return None if result is None else str(result)

    async def get(self, token: str) -> str | None:
        sql = "SELECT ciphertext FROM pynomaly_token_vault WHERE token = $1"
        result = await self._query("fetchval", sql, token)
        return None if result is None else str(result)

    async def delete(self, token: str) -> bool:
        status = await self._query(
            "execute", "DELETE FROM pynomaly_token_vault WHERE token = $1", token
        )
        return bool(status == "DELETE 1")

    async def replace(
        self, token: str, old_ciphertext: str, ciphertext: str, fingerprint: str | None
    ) -> bool:
        status = await self._query(
            "execute",
            "UPDATE pynomaly_token_vault SET ciphertext = $1, fingerprint = $2 "
            "WHERE token = $3 AND ciphertext = $4",
            ciphertext,
            fingerprint,
            token,
            old_ciphertext,
        )
        return bool(status == "UPDATE 1")

    async def entries(self, batch_size: int) -> AsyncIterator[list[VaultEntry]]:
        last = ""
        while True:
            rows = await self._query(
                "fetch",
                "SELECT token, ciphertext, fingerprint FROM pynomaly_token_vault "
                "WHERE token > $1 ORDER BY token LIMIT $2",
                last,
                batch_size,
            )
            if not rows:
                return
            last = rows[-1]["token"]
            yield [VaultEntry(r["token"], r["ciphertext"], r["fingerprint"]) for r in rows]

    async def aclose(self) -> None:
        """Give back this vault's use of the pool (the last user closes it)."""
        await self._lease.release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
