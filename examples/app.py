"""A small, realistic API protected by pynomaly-security.

Items CRUD, a free-text search, and zero-trust sign-in: ``POST /signup``,
``POST /login`` (``{"username", "password"}`` plus ``"totp"`` once MFA is
enrolled; answers tokens, or 401 ``mfa_required``), ``POST /reauth`` (the
password, plus a code once MFA is enrolled) before ``POST /mfa/enroll``,
``/mfa/confirm``, ``/mfa/disable``, ``/mfa/recovery-codes`` or ``/password``
(each ends every session and answers a fresh token pair), ``POST /refresh``,
``POST /logout`` (ends the session), ``POST /logout-all``, and ``GET /me`` with
``Authorization: Bearer <access token>``. Demo users alice and bob exist from
start-up; with ``demo_totp_secret`` (``PYNOMALY_DEMO_TOTP_SECRET``; ``python -m examples``
makes one) carol too, an admin with MFA enrolled on that secret, so the policy
walkthrough's "except admins with MFA" has someone to let through. Run it with
``make demo`` (which calls ``python -m examples``).

The demo's users live in the process's memory (sessions, lockouts and limits are in
the shared store): under ``uvicorn --workers N`` each worker has its own users, and a
sign-up on one is unknown to the others. A real app keeps its users in its database.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.types import Scope

from examples import tenants
from pynomaly_security import SecuritySettings, add_security_endpoints, setup_security_middleware
from pynomaly_security.auth import (
    ZeroTrustAuthenticator,
    build_auth_router,
    install_authenticator,
)
from pynomaly_security.auth.deps import bearer_token
from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.auth.users import InMemoryUserRepository
from pynomaly_security.compliance import users_from_records
from pynomaly_security.crypto import DataEncryption, FieldEncryption
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.policy import Principal
from pynomaly_security.settings import load_settings
from pynomaly_security.storage import Store
from pynomaly_security.tenancy.context import current_tenant

# Demo users, signed up (Argon2id) when the app starts.
DEMO_USERS = {"alice": "wonderland-2024", "bob": "builder-2024"}
DEMO_MFA_ADMIN = ("carol", "cartographer-2024")
"""Signed up, with TOTP on the demo's secret, only when the app is given one."""
DEMO_ADMINS = frozenset({"alice", DEMO_MFA_ADMIN[0]})
"""Users the demo's policies see with the role ``admin`` (the app's own roles in real life)."""


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price: float = Field(ge=0)


class Item(ItemIn):
    id: int


def create_app(
    settings: SecuritySettings | None = None,
    *,
    store: Store | None = None,
    demo_vulnerable: bool | None = None,
    demo_totp_secret: str | None = None,
) -> FastAPI:
    """The example app; ``store``: the stack's shared store (default: from the settings);
    ``demo_vulnerable``: mount the deliberately vulnerable SQL routes of
    ``examples/vulnerable.py`` (default: ``PYNOMALY_DEMO_VULNERABLE=1``);
    ``demo_totp_secret``: base32 TOTP secret of the admin carol (default:
    ``PYNOMALY_DEMO_TOTP_SECRET``; without one there is no carol)."""
    if demo_totp_secret is None:
        demo_totp_secret = os.environ.get("PYNOMALY_DEMO_TOTP_SECRET") or None
    # Issue 21: with tenancy on, two demo tenants and a platform sign-in (examples/tenants.py).
    if settings is None:
        settings = load_settings()
    tenancy_on = settings.tenancy.enabled
    if tenancy_on:
        settings = tenants.with_platform_paths(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if tenancy_on:
            for tenant_id, key in (await tenants.seed(stack, authenticator, DEMO_USERS)).items():
                print(f"demo tenant {tenant_id}: admin key {key} (shown once)")
            yield
            return
        for name, password in DEMO_USERS.items():
            if await authenticator.users.get_by_username(name) is None:
                await authenticator.signup(name, password)
        if demo_totp_secret is not None:
            await _seed_mfa_admin(authenticator, demo_totp_secret)
        yield

    app = FastAPI(title="pynomaly-security example", version="1.0", lifespan=lifespan)
    stack = setup_security_middleware(app, settings=settings, store=store)
    assert stack.store is not None
    assert stack.lockouts is not None
    # With tenancy, users per tenant in the shared state (every worker knows them).
    tenant_users = (
        tenants.TenantUserRepository(stack.tenancy.state) if stack.tenancy is not None else None
    )
    # One store and one lockout with the stack: the login guard, this router and
    # the admin API (/api/security/lockouts) all see the same locks.
    authenticator = ZeroTrustAuthenticator.from_settings(
        stack.settings,
        stack.tenancy.store if stack.tenancy is not None else stack.store,
        **({"users": tenant_users} if tenant_users is not None else {}),
        lockouts=stack.lockouts,
        keyring=stack.keyring,
        event_sink=stack.security_monitor.submit,
        alert_sink=stack.security_monitor.raise_alert,
    )
    install_authenticator(app, authenticator)
    if stack.compliance is not None:
        # What the compliance checks read of the demo's data (issue 19): its users (alice
        # and carol are admins, carol alone with MFA) and the fields it encrypts.
        fields = FieldEncryption(DataEncryption(stack.settings, keyring=stack.keyring))
        fields.register_encrypted_field("customers", "email", blind_index=True)
        stack.compliance.sources.field_encryption = fields
        if isinstance(authenticator.users, InMemoryUserRepository):
            stack.compliance.sources.users = users_from_records(
                authenticator.users.records, lambda user: user.username in DEMO_ADMINS
            )
    if stack.policies is not None:
        stack.policies.principal_of = _principal_of(authenticator)
    app.include_router(
        build_auth_router(
            authenticator,
            resolver=stack.client_ip_resolver,
            secure_cookies=not stack.settings.development_mode,
        )
    )
    if tenant_users is not None:
        app.include_router(
            build_auth_router(
                authenticator,
                resolver=stack.client_ip_resolver,
                secure_cookies=not stack.settings.development_mode,
            ),
            prefix=tenants.PLATFORM_PREFIX,
        )
        tenants.install_deletion_hook(stack, tenant_users)
        items_db = os.environ.get("PYNOMALY_DEMO_ITEMS_DB")
        if items_db:
            table = os.environ.get("PYNOMALY_DEMO_ITEMS_TABLE", "items")
            tenants.add_database_items(app, items_db, table)
    add_security_endpoints(app)

    # Items per tenant (one dict when tenancy is off): a tenant's routes see only its own.
    items_by_tenant: dict[str | None, dict[int, Item]] = {}
    ids = itertools.count(1)

    def tenant_items() -> dict[int, Item]:
        return items_by_tenant.setdefault(current_tenant(), {})

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"service": "example", "docs": "/docs"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items", response_model=list[Item])
    async def list_items() -> list[Item]:
        return list(tenant_items().values())

    @app.post("/items", response_model=Item, status_code=201)
    async def create_item(body: ItemIn) -> Item:
        item = Item(id=next(ids), **body.model_dump())
        tenant_items()[item.id] = item
        return item

    @app.get("/items/{item_id}", response_model=Item)
    async def get_item(item_id: int) -> Item:
        items = tenant_items()
        if item_id not in items:
            raise HTTPException(status_code=404, detail="item not found")
        return items[item_id]

    @app.put("/items/{item_id}", response_model=Item)
    async def update_item(item_id: int, body: ItemIn) -> Item:
        items = tenant_items()
        if item_id not in items:
            raise HTTPException(status_code=404, detail="item not found")
        items[item_id] = Item(id=item_id, **body.model_dump())
        return items[item_id]

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        items = tenant_items()
        if items.pop(item_id, None) is None:
            raise HTTPException(status_code=404, detail="item not found")

    @app.get("/search", response_model=list[Item])
    async def search(q: Annotated[str, Query(max_length=500)] = "") -> list[Item]:
        items = tenant_items()
        needle = q.casefold()
        return [
            i
            for i in items.values()
            if needle in i.name.casefold() or needle in i.description.casefold()
        ]

    if demo_vulnerable is None:
        demo_vulnerable = os.environ.get("PYNOMALY_DEMO_VULNERABLE") == "1"
    if demo_vulnerable:
        from examples.vulnerable import add_vulnerable_routes

        add_vulnerable_routes(app)

    app.state.example_stack = stack
    app.state.example_authenticator = authenticator
    return app


async def _seed_mfa_admin(authenticator: ZeroTrustAuthenticator, secret: str) -> None:
    """carol, an admin whose second factor is ``secret`` (as after /mfa/confirm)."""
    name, password = DEMO_MFA_ADMIN
    user = await authenticator.users.get_by_username(name)
    if user is None:
        user = await authenticator.signup(name, password)
    if not user.mfa_enabled:
        await authenticator.users.update(user.but(totp_secret=authenticator.totp.seal(secret)))


def _principal_of(
    authenticator: ZeroTrustAuthenticator,
) -> Callable[[Scope], Awaitable[Principal | None]]:
    """Who a request is for the coarse policy rules: the bearer token's verified session
    (role ``admin`` for ``DEMO_ADMINS``; MFA when the session's ``amr`` has ``otp``)."""

    async def principal_of(scope: Scope) -> Principal | None:
        token = bearer_token(Request(scope))
        if token is None:
            return None
        try:
            session = await authenticator.current_session(token)
        except (InvalidToken, AuthUnavailable):
            return None
        admin = session.user.username in DEMO_ADMINS
        return Principal(
            session.user.user_id,
            roles=frozenset({"admin" if admin else "user"}),
            mfa="otp" in session.amr,
        )

    return principal_of
