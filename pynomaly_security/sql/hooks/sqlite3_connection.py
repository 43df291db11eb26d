"""sqlite3: a connection class whose statements pass the sink's check first.

``sqlite3.connect(path, factory=ProtectedSQLiteConnection)`` (or
:func:`connect`). ``Connection.execute`` does not go through ``Cursor.execute``
(CPython runs the statement directly), so both classes check.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from pynomaly_security.sql.guard import guard_statement

__all__ = ["ProtectedSQLiteConnection", "ProtectedSQLiteCursor", "connect"]

# Whatever sqlite3 accepts as parameters (typeshed: a sequence or a mapping).
_Params = Any


class ProtectedSQLiteCursor(sqlite3.Cursor):
    """A cursor that checks each statement before SQLite sees it."""

    def execute(self, sql: str, parameters: _Params = (), /) -> ProtectedSQLiteCursor:
        guard_statement(sql, "sqlite")
        super().execute(sql, parameters)
        return self

    def executemany(
        self, sql: str, seq_of_parameters: Iterable[_Params], /
    ) -> ProtectedSQLiteCursor:
        guard_statement(sql, "sqlite")
        super().executemany(sql, seq_of_parameters)
        return self

    def executescript(self, sql_script: str, /) -> ProtectedSQLiteCursor:
        guard_statement(sql_script, "sqlite")
        super().executescript(sql_script)
        return self


class ProtectedSQLiteConnection(sqlite3.Connection):
    """A connection whose statements are checked against the current request's
    values; its cursors are :class:`ProtectedSQLiteCursor` unless a ``factory``
    is given to :meth:`cursor` (give a subclass of it)."""

    def cursor(self, factory: Any = ProtectedSQLiteCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: _Params = (), /) -> sqlite3.Cursor:
        guard_statement(sql, "sqlite")
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[_Params], /) -> sqlite3.Cursor:
        guard_statement(sql, "sqlite")
        return super().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        guard_statement(sql_script, "sqlite")
        return super().executescript(sql_script)


def connect(database: str, **kwargs: Any) -> ProtectedSQLiteConnection:
    """``sqlite3.connect`` with a :class:`ProtectedSQLiteConnection`."""
    connection: ProtectedSQLiteConnection = sqlite3.connect(
        database, factory=ProtectedSQLiteConnection, **kwargs
    )
    return connection
