"""The tenancy tests' PostgreSQL: a schema and a role that is not a superuser; and the
example app and its client of ``test_app.py`` for every tenancy test module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from pynomaly_security.tenancy.rls import rls_statements
from tests.conftest import require_postgres
from tests.tenancy.test_app import app as app  # fixtures shared with the other modules
from tests.tenancy.test_app import client as client


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
