"""DELIBERATELY VULNERABLE demo routes: SQL built by string formatting (issue 15).

Never copy this code. It exists so users and tests can watch the SQL sink stop an
injection the edge inspection may let through: ``GET /demo/users?name=...``
pastes ``name`` between quotes into a SQLite statement, ``GET /demo/users/by-id/{id}``
pastes the path segment as a number, ``POST /demo/users/search`` pastes a JSON
field, and ``GET /demo/users/legacy?name=`` first decodes the value once more
(percent-decoding, NFKC) as legacy code does for clients that double-encode.
``GET /demo/users-safe?name=`` is the fix: a ``?`` parameter. Mounted only when
``PYNOMALY_DEMO_VULNERABLE=1`` (``create_app(demo_vulnerable=True)``).

The connection is a :class:`~pynomaly_security.sql.hooks.ProtectedSQLiteConnection`:
with ``PYNOMALY_SECURITY__SQL_INJECTION_PROTECTION=true`` (the default) a value
that changes a statement's structure is stopped before SQLite runs it and the
request is answered 403; with it false, the routes are as exploitable as they look.
The endpoints are sync, so they run in a worker thread as most database code does.
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Body, FastAPI, HTTPException

from pynomaly_security.sql.hooks import ProtectedSQLiteConnection

__all__ = ["DEMO_USERS_TABLE", "add_vulnerable_routes"]

DEMO_USERS_TABLE = [
    (1, "alice", "alice@example.com", "s3cret-alice"),
    (2, "bob", "bob@example.com", "s3cret-bob"),
    (3, "carol", "carol@example.com", "s3cret-carol"),
]


def add_vulnerable_routes(app: FastAPI) -> None:
    """Mount the vulnerable demo routes on ``app`` (one in-memory database)."""
    db = sqlite3.connect(":memory:", factory=ProtectedSQLiteConnection, check_same_thread=False)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, secret TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", DEMO_USERS_TABLE)
    db.commit()
    lock = threading.Lock()

    def run(statement: str) -> list[dict[str, Any]]:
        with lock:
            try:
                rows = db.execute(statement).fetchall()
            except sqlite3.Error:
                # What a careless app does: the database's error becomes a 500.
                raise HTTPException(status_code=500, detail="database error") from None
        return [{"id": r[0], "name": r[1], "email": r[2]} for r in rows]

    @app.get("/demo/users", tags=["deliberately vulnerable demo"])
    def demo_users_by_name(name: str = "") -> list[dict[str, Any]]:
        # VULNERABLE ON PURPOSE: string formatting instead of a ? parameter.
        return run(f"SELECT id, name, email FROM users WHERE name = '{name}'")

    @app.get("/demo/users/by-id/{user_id}", tags=["deliberately vulnerable demo"])
    def demo_user_by_id(user_id: str) -> list[dict[str, Any]]:
        # VULNERABLE ON PURPOSE: a "number" pasted into the statement unquoted.
        return run(f"SELECT id, name, email FROM users WHERE id = {user_id}")

    @app.post("/demo/users/search", tags=["deliberately vulnerable demo"])
    def demo_users_search(name: Annotated[str, Body(embed=True)]) -> list[dict[str, Any]]:
        # VULNERABLE ON PURPOSE: a JSON field pasted between quotes.
        return run(f"SELECT id, name, email FROM users WHERE name = '{name}'")

    @app.get("/demo/users/legacy", tags=["deliberately vulnerable demo"])
    def demo_users_legacy(name: str = "") -> list[dict[str, Any]]:
        # VULNERABLE ON PURPOSE, twice: decoded again, then pasted between quotes.
        name = unicodedata.normalize("NFKC", unquote(name))
        return run(f"SELECT id, name, email FROM users WHERE name = '{name}'")

    @app.get("/demo/users-safe", tags=["deliberately vulnerable demo"])
    def demo_users_safe(name: str = "") -> list[dict[str, Any]]:
        # The fix: the value is a parameter, never SQL (hostile values pass, harmless).
        with lock:
            rows = db.execute("SELECT id, name, email FROM users WHERE name = ?", (name,))
            return [{"id": r[0], "name": r[1], "email": r[2]} for r in rows.fetchall()]
