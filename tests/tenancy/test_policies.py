"""Tenant policies (issue 21) over HTTP on the example app: a tenant admin adds a policy
that restricts its own tenant's requests only; an allow rule is refused; changes need
re-authentication and are audited; no other tenant's or global policy is reachable."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.tenancy.test_app import ADMIN, tenant

USER = {"username": "ida", "password": "initech-passphrase-2024"}
NO_DELETE = {
    "id": "no-delete",
    "rules": [
        {
            "id": "items",
            "effect": "deny",
            "principals": ["*"],
            "actions": ["DELETE"],
            "resources": ["/items/*"],
        }
    ],
}


async def tenant_admin(client: httpx.AsyncClient, tid: str) -> dict[str, str]:
    """A new tenant's admin key, and a re-authenticated session of one of its users."""
    made = await client.post("/api/security/tenants", json={"id": tid}, headers=ADMIN)
    assert made.status_code == 201, made.text
    signed_up = await client.post("/signup", json=USER, headers=tenant(tid))
    assert signed_up.status_code == 201, signed_up.text
    token = (await client.post("/login", json=USER, headers=tenant(tid))).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}", **tenant(tid)}
    again = await client.post("/reauth", json={"password": USER["password"]}, headers=bearer)
    assert again.status_code == 200, again.text
    return {"X-API-Key": made.json()["admin_key"], **bearer}


async def item(client: httpx.AsyncClient, tid: str) -> str:
    made = await client.post("/items", json={"name": "stapler", "price": 9.5}, headers=tenant(tid))
    assert made.status_code in (200, 201), made.text
    return f"/items/{made.json()['id']}"


@pytest.mark.anyio
async def test_a_tenant_policy_restricts_that_tenant_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await tenant_admin(client, "initech")
    base = "/api/security/tenants/initech/policies"
    allow = {**NO_DELETE, "rules": [{**NO_DELETE["rules"][0], "effect": "allow"}]}
    loosening = await client.post(base, json=allow, headers=admin)
    assert loosening.status_code == 422 and "only restrict" in loosening.text
    key_only = {"X-API-Key": admin["X-API-Key"]}
    assert (await client.post(base, json=NO_DELETE, headers=key_only)).status_code == 401
    created = await client.post(base, json=NO_DELETE, headers=admin)
    assert created.status_code == 201, created.text
    activated = await client.post(f"{base}/no-delete/versions/1/activate", headers=admin)
    assert activated.status_code == 200, activated.text

    mine, theirs = await item(client, "initech"), await item(client, "acme")
    refused = await client.delete(mine, headers=tenant("initech"))
    assert refused.status_code == 403
    assert (await client.delete(theirs, headers=tenant("acme"))).status_code in (200, 204)

    listed = await client.get(base, headers=admin)
    assert [p["policy_id"] for p in listed.json()] == ["no-delete"]
    assert (await client.get("/api/security/policies", headers=key_only)).status_code == 401
    other = await client.get("/api/security/tenants/acme/policies", headers=key_only)
    assert other.status_code in (401, 404)
    platform = await client.get("/api/security/policies", headers=ADMIN)
    assert "no-delete" not in platform.text  # not a global policy

    await app.state.pynomaly_security.audit_logger.flush()
    trail = await client.get(
        "/api/security/tenants/initech/audit",
        params={"event_type": "admin_action", "limit": 100},
        headers=key_only,
    )
    actions = {r.get("action") for r in trail.json()["items"]}
    assert {"policy_created", "policy_activated"} <= actions, trail.text
