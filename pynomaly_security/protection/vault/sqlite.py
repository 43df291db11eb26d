"""SQLite token vault (the default): one table, blocking calls run in a worker thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Self, TypeVar

import anyio.to_thread

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.protection.vault.base import VaultEntry

__all__ = ["SQLiteTokenVault"]

T = TypeVar("T")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pynomaly_token_vault ("
    "token TEXT PRIMARY KEY, ciphertext TEXT NOT NULL, fingerprint TEXT UNIQUE)"
)


class SQLiteTokenVault:
    """Token vault in a SQLite file.

    Args:
        path: database file (``":memory:"`` for tests).
    """

    def __init__(self, path: str) -> None:
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open token vault database {path!r}") from exc
        # One connection shared by worker threads: serialise access.
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
        path = url.removeprefix("sqlite:///")
        if path == url or not path:
            raise ConfigurationError(f"expected sqlite:///<path> for the token vault, got {url!r}")
        return cls(path)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return func(*args)
                except sqlite3.Error as exc:
                    raise StorageError("token vault (sqlite) failed") from exc

        return await anyio.to_thread.run_sync(locked)

    def _put(self, token: str, ciphertext: str, fingerprint: str | None) -> str | None:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO pynomaly_token_vault VALUES (?, ?, ?)",
            (token, ciphertext, fingerprint),
        )
        if cur.rowcount == 1:
            return token
        return self._find(fingerprint) if fingerprint else None

    def _find(self, fingerprint: str) -> str | None:
        row = self._conn.execute(
            "SELECT token FROM pynomaly_token_vault WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else str(row[0])

    async def put(self, token: str, ciphertext: str, fingerprint: str | None = None) -> str | None:
        return await self._run(self._put, token, ciphertext, fingerprint)

    async def find(self, fingerprint: str) -> str | None:
        return await self._run(self._find, fingerprint)

    async def get(self, token: str) -> str | None:
        def get() -> str | None:
            row = self._conn.execute(
                "SELECT ciphertext FROM pynomaly_token_vault WHERE token = ?", (token,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(get)

    async def delete(self, token: str) -> bool:
        def delete() -> bool:
            sql = "DELETE FROM pynomaly_token_vault WHERE token = ?"
            return self._conn.execute(sql, (token,)).rowcount == 1

        return await self._run(delete)

    async def replace(
        self, token: str, old_ciphertext: str, ciphertext: str, fingerprint: str | None
    ) -> bool:
        def replace() -> bool:
            cur = self._conn.execute(
                "UPDATE pynomaly_token_vault SET ciphertext = ?, fingerprint = ? "
                "WHERE token = ? AND ciphertext = ?",
                (ciphertext, fingerprint, token, old_ciphertext),
            )
            return cur.rowcount == 1

        return await self._run(replace)

    async def entries(self, batch_size: int) -> AsyncIterator[list[VaultEntry]]:
        last = ""
        while True:

            def page(after: str = last) -> list[VaultEntry]:
                rows = self._conn.execute(
                    "SELECT token, ciphertext, fingerprint FROM pynomaly_token_vault "
                    "WHERE token > ? ORDER BY token LIMIT ?",
                    (after, batch_size),
                ).fetchall()
                return [VaultEntry(*row) for row in rows]

            batch = await self._run(page)
            if not batch:
                return
            last = batch[-1].token
            yield batch

    async def aclose(self) -> None:
        with self._lock:
            self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
