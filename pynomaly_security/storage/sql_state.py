"""The monitor's state in SQL: documents, logs and tallies, once for SQLite and PostgreSQL.

:class:`SQLState` implements :class:`~pynomaly_security.storage.base.DocumentStore`,
:class:`~pynomaly_security.storage.base.LogStore` and
:class:`~pynomaly_security.storage.base.TallyStore` with the same semantics as the
memory and Redis stores (``tests/storage/test_monitor_state.py`` runs one contract
over all four). A backend supplies only how statements run (:class:`SQLSessions`:
SQLite on its file's thread, PostgreSQL on its pool) and its :class:`SQLDialect`;
every statement is written here, with ``?`` placeholders (numbered ``$n`` for
asyncpg by :func:`numbered`).

Four tables per prefix (``pns`` by default)::

    <prefix>_documents    collection, id, seq, k0..k3 (indexed values), body
    <prefix>_log_entries  family, stream, seq, entry
    <prefix>_log_streams  family, stream, last (order of last append), born
    <prefix>_tallies      name, field, value

Every value, ids and stream names included, is stored as its JSON text (ASCII):
Redis keeps the same texts, equality on an indexed field is equality of texts
as there, and attacker text (a login's user name with a lone surrogate or a NUL)
fits any TEXT column. Table names come from a checked prefix, never from input,
and query fields are checked against the declared indexed fields before they
reach SQL (:func:`~pynomaly_security.storage.base.check_indexed`), which is why
S608 is silenced for this file only.

Atomicity: each write is one transaction. SQLite's ``BEGIN IMMEDIATE`` takes the
file's write lock; on PostgreSQL a put and an append hold a transaction-level
advisory lock per collection or log family (so concurrent trims never deadlock
and stream order has no ties), an update locks its row (``SELECT ... FOR UPDATE``)
so a compare-and-set (acknowledging an alert) applies once, and tallies upsert
in a fixed field order.
"""
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.base import Scalar, Where, check_indexed

__all__ = [
    "MAX_INDEXED",
    "POSTGRES",
    "SQLITE",
    "SQLDialect",
    "SQLDocuments",
    "SQLLog",
    "SQLSession",
    "SQLSessions",
    "SQLState",
    "numbered",
]

MAX_INDEXED = 4
"""Most indexed fields of a collection (columns ``k0``..``k3``)."""
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (statements hold no literal ``?``)."""
    parts = sql.split("?")
    return "".join(f"{a}${i}" for i, a in enumerate(parts[:-1], 1)) + parts[-1]


def _json(value: Any) -> str:
    # The encoding storage/redis.py uses: compact, ASCII (a lone surrogate is escaped).
    return json.dumps(value, separators=(",", ":"))


class SQLSession(Protocol):
    """Statements on one connection (inside a transaction or not); ``?`` placeholders."""

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...

    async def fetchmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Run ``sql`` once per row of parameters, in order, in one batch; the first
        row each run returned."""
        ...


class SQLSessions(Protocol):
    """How a backend runs statements; driver errors come out as ``StorageError``."""

    def transaction(self, lock: int | None = None) -> AbstractAsyncContextManager[SQLSession]:
        """A transaction, committed on exit; ``lock``: an advisory lock it holds
        (PostgreSQL; SQLite's write lock already serializes every transaction)."""
        ...

    def reader(self) -> AbstractAsyncContextManager[SQLSession]:
        """A connection for reads (no transaction)."""
        ...


@dataclass(frozen=True, slots=True)
class SQLDialect:
    """What differs between the two: an auto-increasing key and row locks."""

    serial: str
    """A column definition of an increasing integer primary key."""
    for_update: str
    """Appended to a SELECT that must lock its row until the transaction ends."""


SQLITE = SQLDialect(serial="INTEGER PRIMARY KEY AUTOINCREMENT", for_update="")
POSTGRES = SQLDialect(serial="BIGSERIAL PRIMARY KEY", for_update=" FOR UPDATE")


def _lock_key(*parts: str) -> int:
    digest = hashlib.sha256("\0".join(("pynomaly-state", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SQLState:
    """Documents, logs and tallies in four tables named ``<prefix>_*``; created on first use.

    Args:
        sessions: how the backend runs statements.
        dialect: :data:`SQLITE` or :data:`POSTGRES`.
        prefix: table name prefix (a lowercase SQL identifier).
    """

    shared = True

    def __init__(self, sessions: SQLSessions, dialect: SQLDialect, *, prefix: str = "pns") -> None:
        if not _PREFIX.match(prefix):
            raise ConfigurationError(
                f"state table prefix {prefix!r} must match {_PREFIX.pattern}"
                " (lowercase SQL identifier)"
            )
        self.sessions = sessions
        self.dialect = dialect
        self.prefix = prefix
        self.documents_table = f"{prefix}_documents"
        self.entries_table = f"{prefix}_log_entries"
        self.streams_table = f"{prefix}_log_streams"
        self.tallies_table = f"{prefix}_tallies"
        self._ready = False

    async def ready(self) -> None:
        """Create the tables if missing (once per process; concurrent workers serialize)."""
        if self._ready:
            return
        async with self.sessions.transaction(_lock_key(self.prefix, "schema")) as s:
            for statement in self._schema():
                await s.execute(statement)
        self._ready = True

    def _schema(self) -> list[str]:
        d, e, st, t = (
            self.documents_table,
            self.entries_table,
            self.streams_table,
            self.tallies_table,
        )
        keys = ", ".join(f"k{i} TEXT NOT NULL" for i in range(MAX_INDEXED))
        return [
            f"""CREATE TABLE IF NOT EXISTS {d} (seq {self.dialect.serial},
              collection TEXT NOT NULL, id TEXT NOT NULL, {keys}, body TEXT NOT NULL,
              UNIQUE (collection, id))""",
            f"CREATE INDEX IF NOT EXISTS {d}_age ON {d} (collection, seq)",
            *(
                f"CREATE INDEX IF NOT EXISTS {d}_k{i} ON {d} (collection, k{i}, seq)"
                for i in range(MAX_INDEXED)
            ),
            f"""CREATE TABLE IF NOT EXISTS {e} (seq {self.dialect.serial},
              family TEXT NOT NULL, stream TEXT NOT NULL, entry TEXT NOT NULL)""",
            f"CREATE INDEX IF NOT EXISTS {e}_stream ON {e} (family, stream, seq)",
            f"""CREATE TABLE IF NOT EXISTS {st} (family TEXT NOT NULL, stream TEXT NOT NULL,
              last BIGINT NOT NULL, born BIGINT NOT NULL, PRIMARY KEY (family, stream))""",
            f"CREATE INDEX IF NOT EXISTS {st}_last ON {st} (family, last)",
            f"""CREATE TABLE IF NOT EXISTS {t} (name TEXT NOT NULL, field TEXT NOT NULL,
              value BIGINT NOT NULL, PRIMARY KEY (name, field))""",
        ]

    # -- lifecycle (the backend's pool is the registry's to open and close) -----------
    async def start(self) -> None:
        await self.ready()

    async def aclose(self) -> None:
        return None

    # -- capabilities ------------------------------------------------------------------
    def documents(self, name: str, *, indexed: Sequence[str], keep: int) -> SQLDocuments:
        """The collection ``name`` (see :class:`~pynomaly_security.storage.base.DocumentStore`)."""
        return SQLDocuments(self, name, indexed, keep)

    def log(self, name: str, *, max_entries: int, max_streams: int) -> SQLLog:
        """The log family ``name`` (see :class:`~pynomaly_security.storage.base.LogStore`)."""
        return SQLLog(self, name, max_entries, max_streams)

    async def add_tallies(self, name: str, deltas: Mapping[str, int]) -> None:
        if not deltas:
            return
        await self.ready()
        t = self.tallies_table
        upsert = (
            f"INSERT INTO {t} (name, field, value) VALUES (?, ?, ?) ON CONFLICT (name, field)"
            f" DO UPDATE SET value = {t}.value + excluded.value"
        )
        # Sorted: workers adding the same fields lock their rows in one order (no deadlock).
        rows = [(name, field, int(deltas[field])) for field in sorted(deltas)]
        async with self.sessions.transaction() as s:
            await s.executemany(upsert, rows)

    async def tallies(self, name: str) -> dict[str, int]:
        await self.ready()
        async with self.sessions.reader() as s:
            rows = await s.fetch(
                f"SELECT field, value FROM {self.tallies_table} WHERE name = ?", name
            )
        return {str(field): int(value) for field, value in rows}


class SQLDocuments:
    """:class:`~pynomaly_security.storage.base.DocumentCollection` in ``<prefix>_documents``:
    the JSON texts of the indexed fields in ``k0``..``k3`` (``null`` for the unused),
    the document's JSON in ``body``, age in ``seq``."""

    def __init__(self, state: SQLState, name: str, indexed: Sequence[str], keep: int) -> None:
        if keep < 1:
            raise ConfigurationError(f"keep must be >= 1, got {keep}")
        if len(indexed) > MAX_INDEXED:
            raise ConfigurationError(f"at most {MAX_INDEXED} indexed fields, got {len(indexed)}")
        self._state = state
        self._name = name
        self._indexed = tuple(indexed)
        self._keep = keep
        self._lock = _lock_key(state.prefix, "documents", name)
        t = state.documents_table
        keys = ", ".join(f"k{i}" for i in range(MAX_INDEXED))
        self._insert = (
            f"INSERT INTO {t} (collection, id, {keys}, body)"
            f" VALUES (?, ?, {', '.join('?' * MAX_INDEXED)}, ?)"
        )
        self._delete = f"DELETE FROM {t} WHERE collection = ? AND id = ?"
        # The oldest beyond `keep`: everything at or below the (keep+1)-th newest seq.
        self._trim = (
            f"DELETE FROM {t} WHERE collection = ? AND seq <= (SELECT seq FROM {t}"
            " WHERE collection = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)"
        )
        self._select_body = f"SELECT body FROM {t} WHERE collection = ? AND id = ?"
        self._update = (
            f"UPDATE {t} SET {', '.join(f'k{i} = ?' for i in range(MAX_INDEXED))}, body = ?"
            " WHERE collection = ? AND id = ?"
        )
        self._table = t

    def _keys(self, document: Mapping[str, Any]) -> list[str]:
        values = [_json(document.get(name)) for name in self._indexed]
        return values + ["null"] * (MAX_INDEXED - len(values))

    def _where(self, where: Mapping[str, Scalar]) -> tuple[str, list[Any]]:
        """``collection = ? AND k<i> = ? ...``: only columns of checked indexed names."""
        sql = "collection = ?"
        args: list[Any] = [self._name]
        for name, value in where.items():
            sql += f" AND k{self._indexed.index(name)} = ?"
            args.append(_json(value))
        return sql, args

    async def put(self, doc_id: str, document: Mapping[str, Any]) -> None:
        body = _json(dict(document))
        await self._state.ready()
        async with self._state.sessions.transaction(self._lock) as s:
            # Delete and insert, not upsert: a put makes the document the newest (new seq).
            await s.execute(self._delete, self._name, _json(doc_id))
            await s.execute(self._insert, self._name, _json(doc_id), *self._keys(document), body)
            await s.execute(self._trim, self._name, self._name, self._keep)

    async def add(self, doc_id: str, document: Mapping[str, Any]) -> bool:
        body = _json(dict(document))
        await self._state.ready()
        # Under the collection's lock (as put): the check and the insert are one step
        # for every worker, so of two adds of one id exactly one lands.
        async with self._state.sessions.transaction(self._lock) as s:
            if await s.fetch(self._select_body, self._name, _json(doc_id)):
                return False
            await s.execute(self._insert, self._name, _json(doc_id), *self._keys(document), body)
            await s.execute(self._trim, self._name, self._name, self._keep)
        return True

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        await self._state.ready()
        async with self._state.sessions.reader() as s:
            rows = await s.fetch(self._select_body, self._name, _json(doc_id))
        return json.loads(rows[0][0]) if rows else None

    async def update(
        self, doc_id: str, changes: Mapping[str, Any], *, only_if: Where = None
    ) -> dict[str, Any] | None:
        await self._state.ready()
        select = self._select_body + self._state.dialect.for_update
        async with self._state.sessions.transaction() as s:
            rows = await s.fetch(select, self._name, _json(doc_id))
            if not rows:
                return None
            document: dict[str, Any] = json.loads(rows[0][0])
            # Compared as JSON texts, as the Redis script compares them (a missing field is null).
            if only_if and any(_json(document.get(k)) != _json(v) for k, v in only_if.items()):
                return document
            if changes:
                document.update(changes)
                keys = self._keys(document)
                await s.execute(self._update, *keys, _json(document), self._name, _json(doc_id))
        return document

    async def find(self, where: Where = None, *, limit: int = 100) -> list[dict[str, Any]]:
        where = where or {}
        check_indexed(self._indexed, where)
        if limit < 1:
            return []
        condition, args = self._where(where)
        await self._state.ready()
        async with self._state.sessions.reader() as s:
            rows = await s.fetch(
                f"SELECT body FROM {self._table} WHERE {condition} ORDER BY seq DESC LIMIT ?",
                *args,
                limit,
            )
        return [json.loads(body) for (body,) in rows]

    async def count(self, where: Where = None, *, group_by: str) -> dict[Scalar, int]:
        where = where or {}
        check_indexed(self._indexed, [*where, group_by])
        condition, args = self._where(where)
        column = f"k{self._indexed.index(group_by)}"
        await self._state.ready()
        async with self._state.sessions.reader() as s:
            rows = await s.fetch(
                f"SELECT {column}, COUNT(*) FROM {self._table} WHERE {condition} GROUP BY {column}",
                *args,
            )
        return {json.loads(value): int(n) for value, n in rows}


class SQLLog:
    """:class:`~pynomaly_security.storage.base.EntryLog` in ``<prefix>_log_entries``
    (trimmed per stream) and ``<prefix>_log_streams`` (trimmed by last append)."""

    def __init__(self, state: SQLState, name: str, max_entries: int, max_streams: int) -> None:
        if max_entries < 1 or max_streams < 1:
            raise ConfigurationError("max_entries and max_streams must be >= 1")
        self._state = state
        self._name = name
        self._max_entries = max_entries
        self._max_streams = max_streams
        self._lock = _lock_key(state.prefix, "log", name)
        e, st = state.entries_table, state.streams_table
        self._entries, self._streams = e, st
        nxt = f"(SELECT COALESCE(MAX(last), 0) + 1 FROM {st} WHERE family = ?)"
        self._insert = f"INSERT INTO {e} (family, stream, entry) VALUES (?, ?, ?)"
        self._trim = (
            f"DELETE FROM {e} WHERE family = ? AND stream = ? AND seq <= (SELECT seq FROM {e}"
            " WHERE family = ? AND stream = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)"
        )
        # Appends of a family are serialized (the transaction's lock), so MAX + 1 is
        # unique. `born` is set once, so a row whose `born` is its `last` was just
        # inserted: the statement says whether the stream is new, with no lookup
        # whose plan would depend on the table's statistics.
        self._touch = (
            f"INSERT INTO {st} (family, stream, last, born) VALUES (?, ?, {nxt}, {nxt})"
            " ON CONFLICT (family, stream) DO UPDATE SET last = excluded.last"
            " RETURNING CASE WHEN born = last THEN 1 ELSE 0 END"
        )
        self._beyond = (
            f"SELECT stream FROM {st} WHERE family = ? ORDER BY last DESC LIMIT ? OFFSET ?"
        )

    async def append(self, chunks: Sequence[tuple[str, Sequence[Any]]]) -> None:
        if not chunks:
            return
        name = self._name
        keyed = [(_json(stream), values) for stream, values in chunks]
        appended: dict[str, int] = {}  # entries per distinct stream, in first-seen order
        for key, values in keyed:
            appended[key] = appended.get(key, 0) + len(values)
        # A handful of statements per flush whatever its number of streams (a flush is
        # one per worker every half second): each executemany is one batch of rows.
        await self._state.ready()
        async with self._state.sessions.transaction(self._lock) as s:
            entries = [(name, key, _json(v)) for key, values in keyed for v in values]
            if entries:  # inserted in order: seq orders a stream's entries
                await s.executemany(self._insert, entries)
            touched = await s.fetchmany(self._touch, [(name, key, name, name) for key, _ in keyed])
            new = {key for (key, _), (born,) in zip(keyed, touched, strict=True) if born}
            # A stream new to the log holds only what was just appended.
            await s.executemany(
                self._trim,
                [
                    (name, key, name, key, self._max_entries)
                    for key, count in appended.items()
                    if count and (key not in new or count > self._max_entries)
                ],
            )
            if not new:
                return  # the number of streams did not grow: nothing to drop
            # The least recently appended beyond the bound (reading past `max_streams`
            # rows of the index, so only when a stream was added).
            rows = await s.fetch(self._beyond, name, len(new), self._max_streams)
            dropped = [(name, stream) for (stream,) in rows]
            if dropped:
                await s.executemany(
                    f"DELETE FROM {self._entries} WHERE family = ? AND stream = ?", dropped
                )
                await s.executemany(
                    f"DELETE FROM {self._streams} WHERE family = ? AND stream = ?", dropped
                )

    async def read(self, stream: str, *, limit: int | None = None) -> list[Any]:
        count = self._max_entries if limit is None else min(limit, self._max_entries)
        if count < 1:
            return []
        await self._state.ready()
        async with self._state.sessions.reader() as s:
            rows = await s.fetch(
                f"SELECT entry FROM {self._entries} WHERE family = ? AND stream = ?"
                " ORDER BY seq DESC LIMIT ?",
                self._name,
                _json(stream),
                count,
            )
        return [json.loads(entry) for (entry,) in rows]

    async def streams(self) -> int:
        await self._state.ready()
        async with self._state.sessions.reader() as s:
            rows = await s.fetch(
                f"SELECT COUNT(*) FROM {self._streams} WHERE family = ?", self._name
            )
        return int(rows[0][0])
