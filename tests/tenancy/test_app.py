"""Multi-tenancy end to end on the example app, in process (issue 21): resolution, one
generic answer for unknown and suspended tenants, a refused and audited cross-tenant
token, per-tenant lockout, quota 429 with the tenant's RateLimit policy and an alert,
usage, tenant admins seeing only their tenant, and deletion with crypto-shredding
while the audit chain still verifies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import DEMO_USERS, create_app
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.tenancy.context import tenant_scope

KEY = "test-admin-key-0123456789abcdef-tenancy"
ADMIN = {"X-API-Key": KEY}
ALICE = {"username": "alice", "password": DEMO_USERS["alice"]}
NOT_FOUND = {"detail": "Not Found"}


def settings(tmp_path: Path, **extra: Any) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        tenancy_enabled=True,
        tenancy_plans={"free": {"rate": ["5/minute"]}, "pro": {"concurrent": 50, "daily": 10_000}},
        brute_force_max_attempts=3,
        **extra,
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(settings(tmp_path))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def tenant(tid: str) -> dict[str, str]:
    return {"X-Tenant": tid}


async def platform_admin(client: httpx.AsyncClient) -> dict[str, str]:
    """The admin key and a re-authenticated platform session (signed in under /platform)."""
    login = await client.post("/platform/login", json=ALICE)
    assert login.status_code == 200, login.text
    headers = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    again = await client.post(
        "/platform/reauth", json={"password": ALICE["password"]}, headers=headers
    )
    assert again.status_code == 200, again.text
    return headers


async def refusals(app: FastAPI, reason: str) -> list[dict[str, Any]]:
    audit = app.state.pynomaly_security.audit_logger
    await audit.flush()
    found = await audit.query(event_type="request_refused", limit=1000)
    return [r for r in found if reason in json.dumps(r, default=str)]


@pytest.mark.anyio
async def test_resolution_and_one_generic_answer(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Each tenant sees its items only; missing, unknown and suspended tenants all get
    the same 404 as an unknown URL."""
    for tid in ("acme", "globex"):
        made = await client.post(
            "/items", json={"name": f"{tid}-item", "price": 1}, headers=tenant(tid)
        )
        assert made.status_code == 201, made.text
    for tid in ("acme", "globex"):
        listed = await client.get("/items", headers=tenant(tid))
        assert [i["name"] for i in listed.json()] == [f"{tid}-item"]
    missing = await client.get("/items")
    unknown = await client.get("/items", headers=tenant("nope"))
    malformed = await client.get("/items", headers=tenant("../../etc"))
    suspend = await client.patch(
        "/api/security/tenants/globex",
        json={"status": "suspended"},
        headers=await platform_admin(client),
    )
    assert suspend.status_code == 200, suspend.text
    suspended = await client.get("/items", headers=tenant("globex"))
    for answer in (missing, unknown, malformed, suspended):
        assert (answer.status_code, answer.json()) == (404, NOT_FOUND)
    assert await refusals(app, "tenant_unknown")


@pytest.mark.anyio
async def test_a_token_of_one_tenant_is_refused_in_another(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """alice of acme's token with X-Tenant: globex is 403, and audited."""
    login = await client.post("/login", json=ALICE, headers=tenant("acme"))
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/me", headers={**bearer, **tenant("acme")})).status_code == 200
    # The claim alone resolves the tenant (claim is the first source).
    assert (await client.get("/me", headers=bearer)).status_code == 200
    crossed = await client.get("/me", headers={**bearer, **tenant("globex")})
    assert crossed.status_code == 403
    assert await refusals(app, "tenant_mismatch")


@pytest.mark.anyio
async def test_lockout_is_per_tenant(client: httpx.AsyncClient) -> None:
    """alice is locked out in acme by failed sign-ins; alice of globex signs in."""
    wrong = {"username": "alice", "password": "not-her-password"}
    statuses = [
        (await client.post("/login", json=wrong, headers=tenant("acme"))).status_code
        for _ in range(5)
    ]
    assert statuses[-1] in (423, 429), statuses
    locked = await client.post("/login", json=ALICE, headers=tenant("acme"))
    assert locked.status_code in (423, 429)
    fine = await client.post("/login", json=ALICE, headers=tenant("globex"))
    assert fine.status_code == 200, fine.text


@pytest.mark.anyio
async def test_quota_429_names_the_tenant_policy_and_alerts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/api/security/tenants", json={"id": "initech", "plan": "free"}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    answers = [await client.get("/items", headers=tenant("initech")) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert '"tenant-free-rate";q=5;w=60' in refused.headers["RateLimit-Policy"]
    assert refused.headers["RateLimit"].startswith('"tenant-free-rate";r=0;t=')
    assert int(refused.headers["Retry-After"]) >= 1
    assert (
        await client.get("/items", headers=tenant("acme"))
    ).status_code == 200  # others unaffected
    monitor = app.state.pynomaly_security.security_monitor
    await monitor.flush()
    with tenant_scope("initech"):  # the tenant's alert, in its namespace
        alerts = await monitor.get_active_alerts()
    assert any(a.alert_type == "tenant_quota_exceeded" and a.tenant == "initech" for a in alerts)
    with tenant_scope("acme"):
        assert not await monitor.get_active_alerts()
    usage = await client.get("/api/security/tenants/initech/usage", headers=ADMIN)
    assert usage.status_code == 200
    assert usage.json()["today"]["refused"] == 2
    assert usage.json()["rate"][0]["remaining"] == 0


@pytest.mark.anyio
async def test_tenant_admins_see_only_their_tenant(client: httpx.AsyncClient) -> None:
    made = await client.post("/api/security/tenants", json={"id": "initech"}, headers=ADMIN)
    own = {"X-API-Key": made.json()["admin_key"], "X-Tenant": "initech"}
    listed = await client.get("/api/security/tenants", headers=own)
    assert [t["id"] for t in listed.json()["tenants"]] == ["initech"]
    assert "admin_key_hash" not in listed.text
    assert (await client.get("/api/security/tenants/acme", headers=own)).status_code in (401, 404)
    everyone = await client.get("/api/security/tenants", headers=ADMIN)
    assert {t["id"] for t in everyone.json()["tenants"]} == {"acme", "globex", "initech"}
    narrower = await client.patch(
        "/api/security/tenants/initech",
        json={"overrides": {"brute_force_max_attempts": 2}},
        headers=own,
    )
    assert narrower.status_code == 200, narrower.text
    looser = await client.patch(
        "/api/security/tenants/initech",
        json={"overrides": {"brute_force_max_attempts": 99}},
        headers=own,
    )
    assert looser.status_code == 422 and "only narrow" in looser.text
    assert (
        await client.patch("/api/security/tenants/initech", json={"status": "active"}, headers=own)
    ).status_code == 403
    assert (
        await client.post("/api/security/tenants", json={"id": "x"}, headers=own)
    ).status_code in (401, 403)
    bad = await client.post("/api/security/tenants", json={"id": "Bad Id!"}, headers=ADMIN)
    assert bad.status_code == 422


@pytest.mark.anyio
async def test_deletion_crypto_shreds_and_the_chain_verifies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    stack = app.state.pynomaly_security
    keys = stack.tenancy.keys
    sealed = await keys.encrypt("globex", b"bob@globex.test")
    kept = await keys.encrypt("acme", b"bob@acme.test")
    assert (await client.post("/login", json=ALICE, headers=tenant("globex"))).status_code == 200
    no_reauth = await client.delete("/api/security/tenants/globex", headers=ADMIN)
    assert no_reauth.status_code == 401  # a sensitive change: a re-authenticated session too
    rotated = await client.post(
        "/api/security/tenants/acme/keys/rotate", headers=await platform_admin(client)
    )
    assert rotated.json()["key_version"] == 2
    deleted = await client.delete(
        "/api/security/tenants/globex", headers=await platform_admin(client)
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["subjects_erased"] == 2
    with pytest.raises(InvalidToken):
        await keys.decrypt("globex", sealed)
    assert await keys.decrypt("acme", kept) == b"bob@acme.test"
    gone = await client.get("/items", headers=tenant("globex"))
    assert (gone.status_code, gone.json()) == (404, NOT_FOUND)
    again = await client.post("/api/security/tenants", json={"id": "globex"}, headers=ADMIN)
    assert again.status_code == 409  # an id is never given out again
    audit = stack.audit_logger
    await audit.flush()
    result = await audit.verify()
    assert result.ok, result.message
    actions = await audit.query(event_type="admin_action", limit=1000)
    assert any("tenant_deleted" in json.dumps(r, default=str) for r in actions)
