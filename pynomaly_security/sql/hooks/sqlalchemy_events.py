"""SQLAlchemy: the ``before_cursor_execute`` event, on one engine or on every one.

``protect_sqlalchemy(engine)`` for a sync ``Engine`` or an ``AsyncEngine`` (its
``sync_engine`` runs the statements); ``protect_sqlalchemy()`` listens on the
``Engine`` class, so every engine of the process is covered, those created
later included (what ``setup_security_middleware`` does when SQLAlchemy is
importable). The statement checked is the one handed to the DBAPI cursor, with
its placeholders: bound parameters are data and never part of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from pynomaly_security.sql.guard import guard_statement

__all__ = ["protect_sqlalchemy"]


def _before_cursor_execute(
    conn: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    # Raising here stops the statement before cursor.execute; SQLAlchemy re-raises
    # an exception that is not the driver's unchanged (no DBAPIError wrapping).
    guard_statement(statement, conn.dialect.name)


def protect_sqlalchemy(engine: Engine | AsyncEngine | None = None) -> None:
    """Check every statement of ``engine`` (default: of every engine) before it runs.
    Calling it again changes nothing."""
    target: Any = Engine if engine is None else engine
    if isinstance(target, AsyncEngine):
        target = target.sync_engine
    if not event.contains(target, "before_cursor_execute", _before_cursor_execute):
        event.listen(target, "before_cursor_execute", _before_cursor_execute)
