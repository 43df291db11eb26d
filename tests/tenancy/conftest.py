"""The tenancy tests' example app and client (settings: ``test_app.settings``), and
their PostgreSQL: a schema and a role that is not a superuser."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security.tenancy.rls import rls_statements
from tests.conftest import require_postgres


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{role}-pw@{host}"))


@pytest.fixture
def pg() -> Iterator[tuple[str, str, str]]:
    """(admin URL, app-role URL, schema): a schema with ``items`` owned by the admin,
    RLS forced, and a fresh LOGIN role (no superuser, no BYPASSRLS) granted on it."""
    import asyncio

    import asyncpg

    url = require_postgres()
    tag = secrets.token_hex(4)
    role, schema = f"ten_app_{tag}", f"ten_rls_{tag}"

    async def run(*statements: str) -> None:
        admin = await asyncpg.connect(url)
        try:
            for statement in statements:
                await admin.execute(statement)
        finally:
            await admin.close()

    asyncio.run(
        run(
            f"CREATE ROLE {role} LOGIN PASSWORD '{role}-pw' NOSUPERUSER",
            f"CREATE SCHEMA {schema}",
            f"CREATE TABLE {schema}.items (id serial PRIMARY KEY, tenant_id text NOT NULL,"
            " name text NOT NULL)",
            *rls_statements(f"{schema}.items"),
            f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.items TO {role}",
            f"GRANT USAGE ON SEQUENCE {schema}.items_id_seq TO {role}",
        )
    )
    try:
        yield url, _as_role(url, role), schema
    finally:
        asyncio.run(
            run(
                f"DROP SCHEMA IF EXISTS {schema} CASCADE",
                f"DROP OWNED BY {role}",
                f"DROP ROLE IF EXISTS {role}",
            )
        )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    from examples.app import create_app
    from tests.tenancy.test_app import settings

    application = create_app(settings(tmp_path))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
