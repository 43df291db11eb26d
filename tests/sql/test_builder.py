"""SafeQueryBuilder: the guide's call, each paramstyle, identifiers checked and
named in errors, and the built statements run for real on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest

from pynomaly_security import ConfigurationError, SafeQueryBuilder, SQLInjectionProtector
from pynomaly_security.sql import BuiltQuery, InvalidIdentifier, check_statement


def test_the_guides_call() -> None:
    """The integration guide's build_select, as written."""
    builder = SafeQueryBuilder()
    query, params = builder.build_select(
        table_name="users",
        columns=["id", "name", "email"],
        where_conditions={"active": True, "role": "user"},
        limit=100,
    )
    assert query == (
        'SELECT "id", "name", "email" FROM "users" WHERE "active" = ? AND "role" = ? LIMIT ?'
    )
    assert params == (True, "user", 100)
    assert SQLInjectionProtector().analyze_query(query, params).is_safe


@pytest.mark.parametrize(
    ("dialect", "style", "sql", "params"),
    [
        pytest.param("sqlite", None, 'UPDATE "t" SET "a" = ? WHERE "id" IN (?, ?)', (1, 2, 3),
                     id="qmark"),
        pytest.param("postgresql", None, 'UPDATE "t" SET "a" = $1 WHERE "id" IN ($2, $3)',
                     (1, 2, 3), id="asyncpg-numeric-dollar"),
        pytest.param("postgresql", "format", 'UPDATE "t" SET "a" = %s WHERE "id" IN (%s, %s)',
                     (1, 2, 3), id="psycopg-format"),
        pytest.param("postgresql", "pyformat",
                     'UPDATE "t" SET "a" = %(p1)s WHERE "id" IN (%(p2)s, %(p3)s)',
                     {"p1": 1, "p2": 2, "p3": 3}, id="psycopg-pyformat"),
        pytest.param("sqlite", "named", 'UPDATE "t" SET "a" = :p1 WHERE "id" IN (:p2, :p3)',
                     {"p1": 1, "p2": 2, "p3": 3}, id="sqlalchemy-named"),
        pytest.param("mysql", None, "UPDATE `t` SET `a` = %s WHERE `id` IN (%s, %s)", (1, 2, 3),
                     id="mysql-format"),
    ],
)
def test_paramstyles(dialect: str, style: str | None, sql: str, params: object) -> None:
    """Values become placeholders in the driver's style; identifiers are quoted
    for the dialect."""
    built = SafeQueryBuilder(dialect, style).build_update("t", {"a": 1}, {"id": [2, 3]})
    assert built == BuiltQuery(sql, params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ['users"; DROP TABLE x; --', "1users", "us ers", "users--", "a.b.c", "", "ü" * 3,
     "x" * 64, "users`"],
)
def test_bad_identifiers_are_named_in_the_error(name: str) -> None:
    """Names that are not plain identifiers raise InvalidIdentifier (a
    ConfigurationError and ValueError) whose message names them."""
    builder = SafeQueryBuilder()
    for build in (
        lambda: builder.build_select(name),
        lambda: builder.build_select("t", [name]),
        lambda: builder.build_insert("t", {name: 1}),
        lambda: builder.build_count("t", {name: 1}),
    ):
        with pytest.raises(InvalidIdentifier, match="SQL identifier") as caught:
            build()
        assert repr(name) in str(caught.value)
        assert isinstance(caught.value, ConfigurationError | ValueError)


def test_order_by_comes_from_the_allow_list() -> None:
    """ORDER BY names must be in ``allowed_order_by`` (or the selected columns);
    ``-name`` sorts descending."""
    builder = SafeQueryBuilder()
    sql, _ = builder.build_select("t", ["id", "name"], order_by=["-name", "id"])
    assert sql.endswith('ORDER BY "name" DESC, "id" ASC')
    sql, _ = builder.build_select("t", order_by="created", allowed_order_by=["created"])
    assert sql == 'SELECT * FROM "t" ORDER BY "created" ASC'
    with pytest.raises(InvalidIdentifier, match="ORDER BY column 'password' is not in"):
        builder.build_select("t", ["id"], order_by="password")
    with pytest.raises(InvalidIdentifier, match="ORDER BY column 'id' is not in the allow-list"):
        builder.build_select("t", order_by="id")


@pytest.mark.parametrize("bad", [-1, "10", 1.5, True, None])
def test_limit_and_offset_are_integers(bad: object) -> None:
    """LIMIT and OFFSET accept non-negative ints only (None for LIMIT means none)."""
    builder = SafeQueryBuilder()
    if bad is not None:
        with pytest.raises(ValueError, match="limit must be a non-negative int"):
            builder.build_select("t", limit=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="offset must be a non-negative int"):
            builder.build_select("t", offset=bad)  # type: ignore[arg-type]


def test_refusals() -> None:
    """Updates and deletes without conditions need ``allow_all_rows``; empty value
    maps and unknown paramstyles are refused with a message."""
    builder = SafeQueryBuilder()
    with pytest.raises(ValueError, match="build_delete without where_conditions"):
        builder.build_delete("t", None)
    assert builder.build_delete("t", {}, allow_all_rows=True).sql == 'DELETE FROM "t"'
    with pytest.raises(ValueError, match="build_update without where_conditions"):
        builder.build_update("t", {"a": 1}, None)
    with pytest.raises(ValueError, match="at least one column value"):
        builder.build_insert("t", {})
    with pytest.raises(ValueError, match="unknown paramstyle 'dollar'; known: qmark"):
        SafeQueryBuilder("postgresql", "dollar")


# -- run for real -------------------------------------------------------------------

HOSTILE = "x' OR '1'='1'; DROP TABLE t; --"


@pytest.fixture
def sqlite_db() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        'CREATE TABLE "sql_people" (id INTEGER PRIMARY KEY, name TEXT, role TEXT, '
        "active INTEGER, score INTEGER)"
    )
    yield connection
    connection.close()


@pytest.mark.parametrize("style", ["qmark", "named"])
def test_built_statements_run_on_sqlite(sqlite_db: sqlite3.Connection, style: str) -> None:
    """Insert, select (IN, NULL, ORDER BY, LIMIT/OFFSET), count, update and delete run
    on sqlite3; a hostile value is stored and matched as data, never as SQL."""
    builder = SafeQueryBuilder("sqlite", style)
    rows = [("ann", "admin", True, 3), ("bob", "user", True, 1), (HOSTILE, "user", False, 2),
            ("cy", None, True, 5)]
    for name, role, active, score in rows:
        sqlite_db.execute(*builder.build_insert(
            "sql_people", {"name": name, "role": role, "active": active, "score": score}))
    query, params = builder.build_select(
        "sql_people", ["name", "score"], {"role": ["user", "admin"], "active": True},
        order_by="-score", limit=10, offset=0)
    assert sqlite_db.execute(query, params).fetchall() == [("ann", 3), ("bob", 1)]
    query, params = builder.build_select("sql_people", ["name"], {"role": None})
    assert sqlite_db.execute(query, params).fetchall() == [("cy",)]
    query, params = builder.build_select("sql_people", ["name"], {"name": HOSTILE})
    assert sqlite_db.execute(query, params).fetchall() == [(HOSTILE,)]
    assert check_statement(query, [HOSTILE]) is None  # the value never reaches the text
    query, params = builder.build_select("sql_people", ["name"], order_by="name", offset=3)
    assert sqlite_db.execute(query, params).fetchall() == [(HOSTILE,)]
    query, params = builder.build_select("sql_people", ["name"], {"id": []})
    assert sqlite_db.execute(query, params).fetchall() == []
    sqlite_db.execute(*builder.build_update("sql_people", {"score": 9}, {"name": "bob"}))
    sqlite_db.execute(*builder.build_delete("sql_people", {"name": HOSTILE}))
    assert sqlite_db.execute(*builder.build_count("sql_people", {"score": 9})).fetchone() == (1,)
    assert sqlite_db.execute(*builder.build_count("sql_people")).fetchone() == (3,)


@pytest.mark.anyio
async def test_built_statements_run_on_postgresql(postgres_url: str) -> None:
    """The same on PostgreSQL through asyncpg ($1 placeholders), with RETURNING."""
    import asyncpg

    table = f"sql_builder_{uuid.uuid4().hex[:8]}"
    builder = SafeQueryBuilder("postgresql")
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            f'CREATE TABLE "{table}" (id serial PRIMARY KEY, name text, role text, '
            "active boolean, score integer)"
        )
        ids = []
        for name, role, active, score in [("ann", "admin", True, 3), ("bob", "user", True, 1),
                                          (HOSTILE, "user", False, 2)]:
            query, params = builder.build_insert(
                table, {"name": name, "role": role, "active": active, "score": score},
                returning=["id"])
            ids.append(await connection.fetchval(query, *params))
        assert len(set(ids)) == 3
        query, params = builder.build_select(
            table, ["name"], {"role": ["user", "admin"], "active": True},
            order_by="-score", allowed_order_by=["score", "name"], limit=1, offset=1)
        assert [r["name"] for r in await connection.fetch(query, *params)] == ["bob"]
        query, params = builder.build_select(table, ["name"], {"name": HOSTILE})
        assert [r["name"] for r in await connection.fetch(query, *params)] == [HOSTILE]
        query, params = builder.build_select(table, ["name"], order_by="name", offset=2)
        assert [r["name"] for r in await connection.fetch(query, *params)] == [HOSTILE]
        query, params = builder.build_update(table, {"score": 9}, {"name": "bob"})
        await connection.execute(query, *params)
        query, params = builder.build_delete(table, {"name": HOSTILE})
        await connection.execute(query, *params)
        query, params = builder.build_count(table, {"score": 9})
        assert await connection.fetchval(query, *params) == 1
    finally:
        await connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        await connection.close()
