"""asyncpg: a connection class whose statements pass the sink's check first.

``asyncpg.connect(dsn, connection_class=ProtectedAsyncpgConnection)`` or
``asyncpg.create_pool(dsn, connection_class=ProtectedAsyncpgConnection)`` (a
pool's connection proxies call these methods). Every public method that takes
SQL text checks it.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pynomaly_security.sql.guard import guard_statement

__all__ = ["ProtectedAsyncpgConnection"]


class ProtectedAsyncpgConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that checks each statement against the current
    request's values (PostgreSQL dialect) before sending it."""

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().execute(query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        guard_statement(command, "postgresql")
        return await super().executemany(command, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().fetchval(query, *args, **kwargs)

    async def fetchmany(self, query: str, args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().fetchmany(query, args, **kwargs)

    async def prepare(self, query: str, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().prepare(query, **kwargs)

    def cursor(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return super().cursor(query, *args, **kwargs)

    async def copy_from_query(self, query: str, *args: Any, **kwargs: Any) -> Any:
        guard_statement(query, "postgresql")
        return await super().copy_from_query(query, *args, **kwargs)
