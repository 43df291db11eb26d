"""The example app's multi-tenancy (issue 21): on with ``PYNOMALY_SECURITY__TENANCY_ENABLED=true``.

Two demo tenants, ``acme`` (plan ``pro``) and ``globex`` (plan ``free``), each with
its own alice and bob (same names, different accounts, sessions and lockouts);
items are kept per tenant. The platform admin signs in under ``/platform``
(``/platform/login``, ``/platform/reauth``: served in the platform scope) for the
re-authentication sensitive tenant changes need. Deleting a tenant erases its
users as audit subjects (their personal data in the trail is crypto-shredded; the
chain still verifies) after the tenancy layer destroyed its keys.

With ``PYNOMALY_DEMO_ITEMS_DB`` (a PostgreSQL URL of a role that is not a superuser)
and ``PYNOMALY_DEMO_ITEMS_TABLE`` (a table isolated by ``rls_statements``), items are
also served from the database under row-level security at ``/db/items``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from pynomaly_security.auth.errors import SignupRefused
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.tenancy.context import current_tenant, platform_scope, tenant_scope
from pynomaly_security.tenancy.model import Tenant
from pynomaly_security.tenancy.users import TenantUserRepository

if TYPE_CHECKING:
    from pynomaly_security.auth import ZeroTrustAuthenticator
    from pynomaly_security.plugin import SecurityStack

DEMO_TENANTS = {"acme": "pro", "globex": "free"}
PLATFORM_PREFIX = "/platform"


def with_platform_paths(settings: SecuritySettings) -> SecuritySettings:
    """The settings with ``/platform`` served in the platform scope."""
    section = settings.tenancy
    if PLATFORM_PREFIX in section.exempt_paths:
        return settings
    paths = [*section.exempt_paths, PLATFORM_PREFIX]
    return settings.model_copy(
        update={"tenancy": section.model_copy(update={"exempt_paths": paths})}
    )


async def seed(
    stack: SecurityStack,
    authenticator: ZeroTrustAuthenticator,
    users: dict[str, str],
) -> dict[str, str]:
    """Create the demo tenants (first start only) and sign up their users and the
    platform's; the new tenants' admin keys (shown once)."""
    tenancy = stack.tenancy
    assert tenancy is not None
    keys: dict[str, str] = {}
    for tenant_id, plan in DEMO_TENANTS.items():
        created = await tenancy.registry.create(Tenant(id=tenant_id, name=tenant_id, plan=plan))
        if created is not None:
            keys[tenant_id] = created[1]
        await tenancy.keys.create(tenant_id)
        with tenant_scope(tenant_id):
            await _sign_up(authenticator, users)
    with platform_scope():
        await _sign_up(authenticator, users)
    return keys


async def _sign_up(authenticator: ZeroTrustAuthenticator, users: dict[str, str]) -> None:
    """The demo users of the running scope; every worker seeds at start-up, and the
    users are shared (``TenantUserRepository``): a name another worker just took is
    the same account."""
    for name, password in users.items():
        if await authenticator.users.get_by_username(name) is None:
            with contextlib.suppress(SignupRefused):
                await authenticator.signup(name, password)


def install_deletion_hook(stack: SecurityStack, users: TenantUserRepository) -> None:
    """On deletion, erase each of the tenant's users as an audit subject."""
    tenancy, audit = stack.tenancy, stack.audit_logger
    if tenancy is None or audit is None:
        return

    async def erase(tenant_id: str) -> int:
        with tenant_scope(tenant_id):  # the tenant's users, as the trail keys them
            ids = await users.user_ids()
            for user_id in ids:
                await audit.erase_subject(user_id)
        return len(ids)

    tenancy.on_delete.append(erase)


class DbItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


def add_database_items(app: FastAPI, url: str, table: str) -> None:
    """``GET/POST /db/items``: items in PostgreSQL under row-level security (the table
    ``table`` isolated with ``tenancy/rls.py``'s statements). Connected as ``url``'s
    role, which the start-up check refuses if RLS would not bind it (a superuser,
    BYPASSRLS, a table without RLS or owned without FORCE). Every query runs in a
    transaction with the running tenant set for it alone: the queries name no tenant."""
    import asyncio

    import asyncpg

    from pynomaly_security.tenancy.rls import check_rls_role, quote_ident, tenant_transaction

    checked = table
    table = quote_ident(table)  # a name from the environment: checked, never SQL text
    pool: list[asyncpg.Pool] = []
    lock = asyncio.Lock()

    async def connection_pool() -> asyncpg.Pool:
        async with lock:
            if not pool:
                opened = await asyncpg.create_pool(url, min_size=1, max_size=4)
                async with opened.acquire() as conn:
                    await check_rls_role(conn, [checked])
                pool.append(opened)
        return pool[0]

    @app.get("/db/items")
    async def list_db_items() -> list[dict[str, Any]]:
        async with (await connection_pool()).acquire() as conn, tenant_transaction(conn):
            rows = await conn.fetch(f"SELECT id, tenant_id, name FROM {table} ORDER BY id")
        return [dict(r) for r in rows]

    @app.post("/db/items", status_code=201)
    async def create_db_item(body: DbItemIn) -> dict[str, Any]:
        async with (await connection_pool()).acquire() as conn, tenant_transaction(conn):
            row = await conn.fetchrow(
                f"INSERT INTO {table} (tenant_id, name) VALUES ($1, $2)"
                " RETURNING id, tenant_id, name",
                current_tenant(),
                body.name,
            )
        return dict(row)
