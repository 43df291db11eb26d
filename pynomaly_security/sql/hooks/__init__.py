"""Driver hooks: each statement is checked by the sink
(:func:`~pynomaly_security.sql.guard.guard_statement`) before the driver sends it.

One module per driver, each importing its driver only when used:

- SQLAlchemy (sync and async engines): ``protect_sqlalchemy(engine)``, or
  ``protect_sqlalchemy()`` for every engine (``setup_security_middleware`` does
  this when SQLAlchemy is importable);
- sqlite3: ``sqlite3.connect(path, factory=ProtectedSQLiteConnection)``;
- asyncpg: ``connection_class=ProtectedAsyncpgConnection`` to ``connect``/``create_pool``;
- psycopg 3: ``protect_psycopg(conn)``.

Outside an HTTP request served behind
:class:`~pynomaly_security.middleware.sqlsink.SQLSinkMiddleware` the hooks do nothing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pynomaly_security.sql.hooks.sqlite3_connection import (
    ProtectedSQLiteConnection,
    ProtectedSQLiteCursor,
)

__all__ = [
    "ProtectedSQLiteConnection",
    "ProtectedSQLiteCursor",
    "install_sql_protection",
    "protect_psycopg",
    "protect_sqlalchemy",
]


def protect_sqlalchemy(engine: Any = None) -> None:
    """See :func:`~pynomaly_security.sql.hooks.sqlalchemy_events.protect_sqlalchemy`."""
    from pynomaly_security.sql.hooks.sqlalchemy_events import protect_sqlalchemy as protect

    protect(engine)


def protect_psycopg(connection: Any) -> None:
    """See :func:`~pynomaly_security.sql.hooks.psycopg_cursor.protect_psycopg`."""
    from pynomaly_security.sql.hooks.psycopg_cursor import protect_psycopg as protect

    protect(connection)


def install_sql_protection() -> list[str]:
    """Hook every importable driver that can be hooked without touching the app's
    connections: SQLAlchemy (a listener on the ``Engine`` class). sqlite3, asyncpg
    and psycopg connections are the app's to create with the classes above (the
    only other way would be to patch the drivers' ``connect``). Returns the names
    of the drivers hooked; calling it again changes nothing."""
    installed = []
    if importlib.util.find_spec("sqlalchemy") is not None:
        protect_sqlalchemy()
        installed.append("sqlalchemy")
    return installed
