"""PostgreSQL token vault via asyncpg (extra ``postgres``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, Self

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.protection.vault.base import VaultEntry

__all__ = ["PostgresTokenVault"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresTokenVault:
    """Token vault in PostgreSQL; the table is created on first use.

    Args:
        url: ``postgresql://user@host:port/db``.
        table: table name (a plain identifier).
    """

    def __init__(self, url: str, *, table: str = "pynomaly_token_vault") -> None:
        if not _IDENT.match(table):
            raise ConfigurationError(f"token vault table must be a plain identifier, got {table!r}")
        try:
            import asyncpg  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                "the PostgreSQL token vault needs asyncpg: "
                "pip install 'pynomaly-security[postgres]'"
            ) from exc
        self._url = url
        self._table = table
        self._pool: Any = None

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(url)

    async def _query(self, method: str, sql: str, *args: Any) -> Any:
        import asyncpg

        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=4)
                await self._pool.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} ("
                    "token TEXT PRIMARY KEY, ciphertext TEXT NOT NULL, fingerprint TEXT UNIQUE)"
                )
            # The table name is a validated identifier; values are always parameters.
            return await getattr(self._pool, method)(
                sql.replace("pynomaly_token_vault", self._table), *args
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
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
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
