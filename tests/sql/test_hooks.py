"""The driver hooks, driven through real ASGI apps behind SQLSinkMiddleware: a
statement that a request value changes the structure of never reaches the
database in block mode (403 request_blocked), runs and is reported in detect
mode; parameterized statements with the same hostile values always run; outside
a request nothing is checked. One real database per driver (SQLite in memory,
PostgreSQL for asyncpg and psycopg)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pynomaly_security._context import SQL_SINK, STATE_KEY, RequestContext
from pynomaly_security.middleware.sqlsink import SinkGuard, SQLSinkMiddleware
from pynomaly_security.middleware.stack import SecurityMiddleware
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.guard import SinkPolicy
from pynomaly_security.sql.hooks import ProtectedSQLiteConnection, protect_sqlalchemy
from tests.conftest import require_postgres

HOSTILE = "x' OR '1'='1"
Run = Callable[[str, str], Awaitable[list[Any]]]
"""(vulnerable or safe, the request's name) -> rows."""


def sink_app(
    run: Run,
    *,
    mode: str = "block",
    seen: list[dict[str, Any]] | None = None,
    layer: str = "standalone",
) -> ASGIApp:
    """A Starlette app whose endpoints run SQL with ``run``; the context the tracking
    layer would set is set by a tiny outer layer so the findings can be read.
    ``layer``: the sink as ``SQLSinkMiddleware`` (``standalone``) or served by the
    stack's fused outer layer (``fused``, which sets the request context itself)."""

    async def vulnerable(request: Request) -> JSONResponse:
        return JSONResponse(await run("vulnerable", request.query_params.get("name", "")))

    async def safe(request: Request) -> JSONResponse:
        return JSONResponse(await run("safe", request.query_params.get("name", "")))

    async def body(request: Request) -> JSONResponse:
        name = (await request.json())["name"]
        return JSONResponse(await run("vulnerable", name))

    class WithContext:
        """Sets the context the tracking layer would, and keeps the sink's findings."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            ctx = RequestContext(uuid.uuid4().hex, "127.0.0.1")
            scope.setdefault("state", {})[STATE_KEY] = ctx
            try:
                await self.app(scope, receive, send)
            finally:
                ctx = scope["state"][STATE_KEY]  # the fused layer's own, with it
                if seen is not None and SQL_SINK in ctx.extra:
                    seen.append(ctx.extra[SQL_SINK])

    policy = SinkPolicy(mode=mode)  # type: ignore[arg-type]
    sink_layer = (
        Middleware(SQLSinkMiddleware, policy=policy)
        if layer == "standalone"
        else Middleware(SecurityMiddleware, sql_sink=SinkGuard(policy))
    )

    return Starlette(
        routes=[
            Route("/vulnerable", vulnerable),
            Route("/safe", safe),
            Route("/body", body, methods=["POST"]),
        ],
        middleware=[Middleware(WithContext), sink_layer],
    )


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def vulnerable_sql(name: str) -> str:
    return f"SELECT id FROM people WHERE name = '{name}'"


async def exercise(run: Run, layer: str = "standalone") -> None:
    """The behaviour every driver must show, in block mode and in detect mode."""
    seen: list[dict[str, Any]] = []
    async with client(sink_app(run, seen=seen, layer=layer)) as c:
        ok = await c.get("/vulnerable", params={"name": "alice"})
        assert ok.status_code == 200 and ok.json() == [1]
        blocked = await c.get("/vulnerable", params={"name": HOSTILE})
        assert blocked.status_code == 403
        assert blocked.json()["error"] == "request_blocked"
        body = await c.post("/body", json={"name": HOSTILE})
        assert body.status_code == 403
        # The same hostile value as a bound parameter is data: it runs, finds nobody.
        safe = await c.get("/safe", params={"name": HOSTILE})
        assert safe.status_code == 200 and safe.json() == []
    assert len(seen) == 2
    finding = seen[0]["findings"][0]
    assert finding["field"] == "query.name" and finding["blocked"] is True
    assert finding["shape"].startswith("SELECT id FROM people")
    assert finding["shape"].endswith(" WHERE name = '[value]'")
    assert HOSTILE not in repr(seen)
    assert seen[1]["findings"][0]["field"] == "body.name"

    seen.clear()
    async with client(sink_app(run, mode="detect", seen=seen, layer=layer)) as c:
        let_through = await c.get("/vulnerable", params={"name": HOSTILE})
        assert let_through.status_code == 200 and let_through.json() == [1, 2]
    assert seen[0]["blocked"] is False and seen[0]["findings"][0]["reason"] == "spans_tokens"


# -- sqlite3


@pytest.fixture
def sqlite_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", factory=ProtectedSQLiteConnection, check_same_thread=False)
    db.executescript(
        "CREATE TABLE people (id INTEGER, name TEXT);"
        "INSERT INTO people VALUES (1, 'alice'), (2, 'bob');"
    )
    return db


@pytest.mark.anyio
@pytest.mark.parametrize("layer", ["standalone", "fused"])
async def test_sqlite3_connection_class(sqlite_db: sqlite3.Connection, layer: str) -> None:
    """sqlite3 through ProtectedSQLiteConnection: its execute and its cursors check;
    the sink served by its own layer or by the stack's fused outer layer."""
    cursors = iter([False, True] * 100)

    async def run(kind: str, name: str) -> list[Any]:
        # Alternate between the connection's execute and a cursor's: both check.
        target: Any = sqlite_db.cursor() if next(cursors) else sqlite_db
        if kind == "safe":
            rows = target.execute("SELECT id FROM people WHERE name = ?", (name,))
        else:
            rows = target.execute(vulnerable_sql(name))
        return [r[0] for r in rows.fetchall()]

    await exercise(run, layer)


@pytest.mark.anyio
async def test_sqlite3_in_a_sync_endpoint_thread(sqlite_db: sqlite3.Connection) -> None:
    """A sync endpoint runs in a worker thread (FastAPI, run_in_threadpool): the
    request's values reach the hook there too."""
    from starlette.concurrency import run_in_threadpool

    async def run(kind: str, name: str) -> list[Any]:
        def query() -> list[Any]:
            if kind == "safe":
                rows = sqlite_db.execute("SELECT id FROM people WHERE name = ?", (name,))
            else:
                rows = sqlite_db.execute(vulnerable_sql(name))
            return [r[0] for r in rows.fetchall()]

        return await run_in_threadpool(query)

    await exercise(run)


def test_outside_a_request_nothing_is_checked(sqlite_db: sqlite3.Connection) -> None:
    """No request, no values: the hook lets every statement through (the app's
    own start-up and batch jobs are not checked)."""
    rows = sqlite_db.execute(vulnerable_sql(HOSTILE)).fetchall()
    assert [r[0] for r in rows] == [1, 2]


@pytest.mark.anyio
async def test_a_caught_block_still_never_runs_and_is_audited(
    sqlite_db: sqlite3.Connection,
) -> None:
    """An app that catches SQLInjectionBlocked answers what it likes; the statement
    did not run and the finding is still in the request context for the audit."""
    ran: list[str] = []

    async def run(kind: str, name: str) -> list[Any]:
        try:
            sqlite_db.execute(vulnerable_sql(name))
        except SQLInjectionBlocked as exc:
            return ["caught", exc.finding.reason]
        ran.append(name)
        return []

    seen: list[dict[str, Any]] = []
    async with client(sink_app(run, seen=seen)) as c:
        response = await c.get("/vulnerable", params={"name": HOSTILE})
    assert response.json() == ["caught", "spans_tokens"] and ran == []
    assert seen[0]["blocked"] is True


# -- SQLAlchemy


@pytest.mark.anyio
async def test_sqlalchemy_sync_engine() -> None:
    """A sync SQLAlchemy engine hooked with protect_sqlalchemy(engine); text() with
    a bound parameter passes."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import StaticPool

    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    protect_sqlalchemy(engine)
    protect_sqlalchemy(engine)  # twice: still one listener
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (id INTEGER, name TEXT)"))
        conn.execute(text("INSERT INTO people VALUES (1, 'alice'), (2, 'bob')"))

    async def run(kind: str, name: str) -> list[Any]:
        with engine.connect() as conn:
            if kind == "safe":
                result = conn.execute(
                    text("SELECT id FROM people WHERE name = :name"), {"name": name}
                )
            else:
                result = conn.execute(text(vulnerable_sql(name)))
            return [r[0] for r in result]

    await exercise(run)
    engine.dispose()


@pytest.mark.anyio
async def test_sqlalchemy_async_engine() -> None:
    """An AsyncEngine (aiosqlite) hooked through its sync_engine; ORM-style
    select() with hostile values passes."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    protect_sqlalchemy(engine)
    people = Table("people", MetaData(), Column("id", Integer), Column("name", String))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE people (id INTEGER, name TEXT)"))
        await conn.execute(text("INSERT INTO people VALUES (1, 'alice'), (2, 'bob')"))

    async def run(kind: str, name: str) -> list[Any]:
        async with engine.connect() as conn:
            if kind == "safe":
                result = await conn.execute(select(people.c.id).where(people.c.name == name))
            else:
                result = await conn.execute(text(vulnerable_sql(name)))
            return [r[0] for r in result]

    await exercise(run)
    await engine.dispose()


# -- PostgreSQL drivers


@pytest.fixture
async def pg_table() -> AsyncIterator[tuple[str, str]]:
    """A table of its own in the test database: (the URL, the table's name)."""
    url = require_postgres()
    import asyncpg

    table = f"people_sqlhooks_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    await conn.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT)")
    await conn.execute(f"INSERT INTO {table} VALUES (1, 'alice'), (2, 'bob')")
    try:
        yield url, table
    finally:
        await conn.execute(f"DROP TABLE {table}")
        await conn.close()


@pytest.mark.anyio
async def test_asyncpg_connection_class(pg_table: tuple[str, str]) -> None:
    """asyncpg through a pool of ProtectedAsyncpgConnection ($1 parameters pass)."""
    import asyncpg

    from pynomaly_security.sql.hooks.asyncpg_connection import ProtectedAsyncpgConnection

    url, table = pg_table
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=2, connection_class=ProtectedAsyncpgConnection
    )

    async def run(kind: str, name: str) -> list[Any]:
        async with pool.acquire() as conn:
            if kind == "safe":
                rows = await conn.fetch(f"SELECT id FROM {table} WHERE name = $1", name)
            else:
                rows = await conn.fetch(vulnerable_sql(name).replace("people", table))
            return sorted(r[0] for r in rows)

    try:
        await exercise(run)
    finally:
        await pool.close()


@pytest.mark.anyio
async def test_psycopg_cursors(pg_table: tuple[str, str]) -> None:
    """psycopg 3, sync and async connections hooked with protect_psycopg (%s passes)."""
    psycopg = pytest.importorskip("psycopg")
    from pynomaly_security.sql.hooks import protect_psycopg

    url, table = pg_table
    aconn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    protect_psycopg(aconn)

    async def run(kind: str, name: str) -> list[Any]:
        if kind == "safe":
            cur = await aconn.execute(f"SELECT id FROM {table} WHERE name = %s", (name,))
        else:
            cur = await aconn.execute(vulnerable_sql(name).replace("people", table))
        return sorted(r[0] for r in await cur.fetchall())

    try:
        await exercise(run)
    finally:
        await aconn.close()

    from starlette.concurrency import run_in_threadpool

    conn = psycopg.connect(url, autocommit=True)
    protect_psycopg(conn)

    async def run_sync(kind: str, name: str) -> list[Any]:
        def query() -> list[Any]:
            with conn.cursor() as cur:
                if kind == "safe":
                    cur.execute(f"SELECT id FROM {table} WHERE name = %s", (name,))
                else:
                    cur.execute(vulnerable_sql(name).replace("people", table))
                return sorted(r[0] for r in cur.fetchall())

        return await run_in_threadpool(query)

    try:
        await exercise(run_sync)
    finally:
        conn.close()


# -- what the sink cannot read fails closed


def plain_app(policy: SinkPolicy, db: sqlite3.Connection) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        await request.body()
        rows = db.execute("SELECT id FROM people WHERE name = 'alice'").fetchall()
        return JSONResponse([r[0] for r in rows])

    return Starlette(
        routes=[Route("/", endpoint, methods=["POST"])],
        middleware=[Middleware(SQLSinkMiddleware, policy=policy)],
    )


@pytest.mark.anyio
async def test_a_body_longer_than_the_sink_keeps_blocks_its_statements(
    sqlite_db: sqlite3.Connection,
) -> None:
    """Block mode: a body past max_body_size was not all kept, so none of the
    request's statements is known safe (403); detect mode runs them."""
    body = b"name=" + b"a" * 64
    async with client(plain_app(SinkPolicy(max_body_size=16), sqlite_db)) as c:
        refused = await c.post("/", content=body)
        short = await c.post("/", content=b"name=bob")
    async with client(plain_app(SinkPolicy(mode="detect", max_body_size=16), sqlite_db)) as c:
        detected = await c.post("/", content=body)
    assert refused.status_code == 403 and refused.json()["error"] == "request_blocked"
    assert short.status_code == 200 and short.json() == [1]
    assert detected.status_code == 200


@pytest.mark.anyio
async def test_a_request_past_the_reading_caps_blocks_its_statements(
    sqlite_db: sqlite3.Connection,
) -> None:
    """A request that cannot be read as the framework reads it (more fields than the
    caps allow) has unknown values: its statements are refused in block mode."""
    from pynomaly_security.detection.types import InspectionLimits

    policy = SinkPolicy(limits=InspectionLimits(max_fields=5))
    async with client(plain_app(policy, sqlite_db)) as c:
        refused = await c.post("/?a=1&b=2&c=3&d=4", content=b"")
        fine = await c.post("/?a=1", content=b"")
    assert refused.status_code == 403
    assert fine.status_code == 200


@pytest.mark.anyio
async def test_words_of_the_path_are_not_looked_for(sqlite_db: sqlite3.Connection) -> None:
    """A REST path names the tables its statements use (/people/...): plain words and
    numbers cannot change a statement's structure, and are not looked for."""
    from pynomaly_security.sql.guard import RequestSink

    sink = RequestSink(
        {"type": "http", "method": "GET", "path": "/people/7", "raw_path": b"/people/7",
         "query_string": b"q=bob%20smith", "headers": []},
        SinkPolicy(),
    )
    assert sink.values() == ["/people/7", "bob smith"]


@pytest.mark.anyio
@pytest.mark.parametrize("layer", ["standalone", "fused"])
async def test_a_body_on_a_get_reaches_the_sink(sqlite_db: sqlite3.Connection, layer: str) -> None:
    """A GET that carries a body (Content-Length) has its body read by the sink too:
    the fused layer keeps the body of any request whose headers announce one."""

    async def run(kind: str, name: str) -> list[Any]:
        return [r[0] for r in sqlite_db.execute(vulnerable_sql(name)).fetchall()]

    async def get_body(request: Request) -> JSONResponse:
        return JSONResponse(await run("vulnerable", (await request.json())["name"]))

    app = sink_app(run, layer=layer)
    assert isinstance(app, Starlette)
    app.router.routes.append(Route("/get-body", get_body, methods=["GET"]))
    async with client(app) as c:
        hostile = await c.request("GET", "/get-body", json={"name": HOSTILE})
        fine = await c.request("GET", "/get-body", json={"name": "alice"})
    assert hostile.status_code == 403 and hostile.json()["error"] == "request_blocked"
    assert fine.status_code == 200 and fine.json() == [1]
