"""psycopg 3: cursor classes whose statements pass the sink's check first.

``protect_psycopg(conn)`` sets the connection's ``cursor_factory`` (sync or
async), so ``conn.execute`` and ``conn.cursor()`` check; or pass
``cursor_factory=ProtectedCursor`` to ``psycopg.connect``. A ``sql.Composed``
query is checked as the text it renders to (its ``sql.Literal`` values are
quoted by psycopg, so they stay one token). Server-side (named) cursors are
not covered.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pynomaly_security.sql.guard import guard_statement

__all__ = ["ProtectedAsyncCursor", "ProtectedCursor", "protect_psycopg"]


def _text(query: Any, connection: Any) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(connection)
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode("utf-8", errors="replace")
    return str(query)


class ProtectedCursor(psycopg.Cursor[Any]):
    """A psycopg cursor that checks each statement against the current request's values."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        guard_statement(_text(query, self.connection), "postgresql")
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        guard_statement(_text(query, self.connection), "postgresql")
        super().executemany(query, params_seq, **kwargs)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        guard_statement(_text(query, self.connection), "postgresql")
        return super().stream(query, params, **kwargs)


class ProtectedAsyncCursor(psycopg.AsyncCursor[Any]):
    """The async twin of :class:`ProtectedCursor`."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        guard_statement(_text(query, self.connection), "postgresql")
        return await super().execute(query, params, **kwargs)

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        guard_statement(_text(query, self.connection), "postgresql")
        await super().executemany(query, params_seq, **kwargs)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        guard_statement(_text(query, self.connection), "postgresql")
        return super().stream(query, params, **kwargs)


def protect_psycopg(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Make ``connection``'s cursors (and ``connection.execute``) check their statements."""
    if isinstance(connection, psycopg.AsyncConnection):
        connection.cursor_factory = ProtectedAsyncCursor
    else:
        connection.cursor_factory = ProtectedCursor
