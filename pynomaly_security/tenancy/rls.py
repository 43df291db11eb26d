"""Database isolation the app cannot forget (issue 21, item 6).

**PostgreSQL row-level security.** :func:`rls_statements` enables *and forces* RLS
on a table with one policy comparing the tenant column with the session setting
``app.tenant_id``, written ``(SELECT current_setting('app.tenant_id', true))`` so
the planner evaluates it once per query (an InitPlan), not once per row. With the
setting unset the comparison is with NULL or ``''``: no row is visible and no row
can be written (fail closed). The setting is set per *transaction*
(``set_config(..., true)``), so a pooled connection (PgBouncer transaction
pooling) never carries one tenant's setting into another's transaction:

* SQLAlchemy: :func:`install_sqlalchemy_tenant_hook` sets it at every ``BEGIN``
  from the running tenant (``tenancy/context.py``);
* asyncpg: ``async with tenant_transaction(conn):``.

RLS does not apply to superusers, to roles with ``BYPASSRLS``, nor to a table's
owner unless the table ``FORCE``s it. :func:`check_rls_role` refuses to start
(``ConfigurationError``) on any of these, or on a listed table without RLS.

**SQLite**: one database file per tenant (:func:`tenant_database_url` with a
``{tenant}`` template, ``sqlite:///./data/{tenant}.db``); the same template gives
physical isolation on any server (``postgresql://.../app_{tenant}``).

References: PostgreSQL docs, "Row Security Policies", ``CREATE POLICY``,
``set_config``; PgBouncer "transaction pooling" feature table.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.tenancy.context import current_namespace, current_tenant
from pynomaly_security.tenancy.model import valid_tenant_id

__all__ = [
    "POLICY_NAME",
    "SETTING",
    "check_rls_role",
    "install_sqlalchemy_tenant_hook",
    "quote_ident",
    "rls_statements",
    "tenant_database_url",
    "tenant_transaction",
]

SETTING = "app.tenant_id"
POLICY_NAME = "pynomaly_tenant_isolation"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SET = "SELECT set_config('app.tenant_id', $1, true)"


def quote_ident(name: str) -> str:
    """``name`` (``table`` or ``schema.table``) quoted, after checking it is a plain
    identifier: never SQL text from input."""
    parts = name.split(".")
    if not parts or len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise ConfigurationError(f"{name!r} is not a plain SQL identifier")
    return ".".join(f'"{p}"' for p in parts)


def rls_statements(table: str, *, column: str = "tenant_id") -> list[str]:
    """The SQL that isolates ``table`` by ``column`` (run it as the table's owner,
    in a migration)."""
    t, c = quote_ident(table), quote_ident(column)
    tenant = f"(SELECT current_setting('{SETTING}', true))"
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {t}",
        f"CREATE POLICY {POLICY_NAME} ON {t} USING ({c} = {tenant}) WITH CHECK ({c} = {tenant})",
    ]


def _tenant_value() -> str:
    """The running tenant for the session setting: '' in the platform scope (sees no
    tenant's rows); outside any scope, :class:`TenantScopeError` (a programming error)."""
    current_namespace()  # raises outside a scope
    return current_tenant() or ""


@contextlib.asynccontextmanager
async def tenant_transaction(conn: Any) -> AsyncIterator[Any]:
    """An asyncpg transaction with the running tenant set for it alone."""
    async with conn.transaction():
        await conn.execute(_SET, _tenant_value())
        yield conn


def install_sqlalchemy_tenant_hook(engine: Any) -> None:
    """Set ``app.tenant_id`` at the start of every transaction of ``engine`` (a
    SQLAlchemy ``Engine`` or ``AsyncEngine``) from the running tenant."""
    from sqlalchemy import event, text

    sync_engine = getattr(engine, "sync_engine", engine)
    statement = text("SELECT set_config('app.tenant_id', :tenant, true)")

    @event.listens_for(sync_engine, "begin")
    def _set_tenant(conn: Any) -> None:
        conn.execute(statement, {"tenant": _tenant_value()})


async def check_rls_role(conn: Any, tables: Sequence[str]) -> None:
    """Refuse (``ConfigurationError``) to run when RLS would not bind this role:
    a superuser, ``BYPASSRLS``, a listed table without RLS, or one it owns without
    ``FORCE``. ``conn``: an asyncpg connection as the app's role."""
    problems: list[str] = []
    role = await conn.fetchrow(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if role["rolsuper"]:
        problems.append(f"role {role['rolname']} is a superuser (RLS never applies)")
    if role["rolbypassrls"]:
        problems.append(f"role {role['rolname']} has BYPASSRLS")
    for table in tables:
        quote_ident(table)
        row = await conn.fetchrow(
            "SELECT c.relrowsecurity, c.relforcerowsecurity,"
            " pg_get_userbyid(c.relowner) = current_user AS owned"
            " FROM pg_class c WHERE c.oid = to_regclass($1)",
            table,
        )
        if row is None:
            problems.append(f"table {table} does not exist")
        elif not row["relrowsecurity"]:
            problems.append(f"table {table} has no row-level security")
        elif row["owned"] and not row["relforcerowsecurity"]:
            problems.append(f"role owns {table} without FORCE ROW LEVEL SECURITY")
    if problems:
        raise ConfigurationError("tenant isolation would not hold: " + "; ".join(problems))


def tenant_database_url(template: str, tenant_id: str) -> str:
    """``template`` with ``{tenant}`` replaced: one database (SQLite file) per tenant."""
    if "{tenant}" not in template:
        raise ConfigurationError("a per-tenant database URL template needs '{tenant}'")
    if not valid_tenant_id(tenant_id):  # never a path or URL part from unchecked text
        raise ConfigurationError(f"{tenant_id!r} is not a tenant id")
    return template.replace("{tenant}", tenant_id)
