"""PostgreSQL row-level security on the real server (issue 21, item 6), as a role that
is not a superuser (the test server's ``postgres`` is one: RLS would never apply):
each tenant sees and writes only its rows, an unset tenant sees none, the SQLAlchemy
hook sets the tenant per transaction, and the start-up check refuses a superuser, a
table without RLS, and an owner without FORCE."""

from __future__ import annotations

import pytest

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.tenancy.context import TenantScopeError, platform_scope, tenant_scope
from pynomaly_security.tenancy.rls import (
    check_rls_role,
    install_sqlalchemy_tenant_hook,
    rls_statements,
    tenant_database_url,
    tenant_transaction,
)


@pytest.mark.anyio
async def test_each_tenant_sees_and_writes_only_its_rows(pg: tuple[str, str, str]) -> None:
    import asyncpg

    _, app_url, schema = pg
    conn = await asyncpg.connect(app_url)
    try:
        for tenant in ("acme", "globex"):
            with tenant_scope(tenant):
                async with tenant_transaction(conn):
                    for i in range(3):
                        await conn.execute(
                            f"INSERT INTO {schema}.items (tenant_id, name) VALUES ($1, $2)",
                            tenant,
                            f"{tenant}-{i}",
                        )
        with tenant_scope("acme"):
            async with tenant_transaction(conn):
                rows = await conn.fetch(f"SELECT tenant_id FROM {schema}.items")
                assert [r[0] for r in rows] == ["acme"] * 3
                with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                    await conn.execute(
                        f"INSERT INTO {schema}.items (tenant_id, name) VALUES ('globex', 'x')"
                    )
        # Outside a transaction-local setting (or in the platform scope): nothing.
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.items") == 0
        with platform_scope():
            async with tenant_transaction(conn):
                assert await conn.fetchval(f"SELECT count(*) FROM {schema}.items") == 0
        with pytest.raises(TenantScopeError):
            async with tenant_transaction(conn):
                pass
        await check_rls_role(conn, [f"{schema}.items"])  # this role passes the check
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_the_startup_check_refuses_what_bypasses_rls(pg: tuple[str, str, str]) -> None:
    import asyncpg

    admin_url, app_url, schema = pg
    superuser = await asyncpg.connect(admin_url)
    try:
        with pytest.raises(ConfigurationError, match="superuser"):
            await check_rls_role(superuser, [f"{schema}.items"])
    finally:
        await superuser.close()
    conn = await asyncpg.connect(app_url)
    try:
        await conn.execute(f"CREATE TABLE {schema}.owned (tenant_id text)")
        with pytest.raises(ConfigurationError, match="no row-level security"):
            await check_rls_role(conn, [f"{schema}.owned"])
        await conn.execute(f"ALTER TABLE {schema}.owned ENABLE ROW LEVEL SECURITY")
        with pytest.raises(ConfigurationError, match="without FORCE"):
            await check_rls_role(conn, [f"{schema}.owned"])
        for sql in rls_statements(f"{schema}.owned"):
            await conn.execute(sql)
        await check_rls_role(conn, [f"{schema}.owned"])
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_sqlalchemy_hook_sets_the_tenant_per_transaction(pg: tuple[str, str, str]) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    _, app_url, schema = pg
    engine = sqlalchemy.create_engine(app_url.replace("postgresql://", "postgresql+psycopg://"))
    install_sqlalchemy_tenant_hook(engine)
    try:
        for tenant in ("acme", "globex", "acme"):
            with tenant_scope(tenant), engine.begin() as conn:
                conn.execute(
                    sqlalchemy.text(
                        f"INSERT INTO {schema}.items (tenant_id, name) VALUES (:t, 'x')"
                    ),
                    {"t": tenant},
                )
        with tenant_scope("globex"), engine.begin() as conn:
            seen = conn.execute(sqlalchemy.text(f"SELECT tenant_id FROM {schema}.items")).all()
            assert [r[0] for r in seen] == ["globex"]
        with tenant_scope("acme"), engine.begin() as conn:
            count = conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {schema}.items")).scalar()
            assert count == 2
    finally:
        engine.dispose()


def test_per_tenant_database_urls() -> None:
    assert tenant_database_url("sqlite:///./data/{tenant}.db", "acme") == "sqlite:///./data/acme.db"
    with pytest.raises(ConfigurationError):
        tenant_database_url("sqlite:///./data/{tenant}.db", "../etc")
    with pytest.raises(ConfigurationError):
        tenant_database_url("sqlite:///./data/app.db", "acme")
