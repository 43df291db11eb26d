"""The monitor's and responders' state per tenant (issue 21): alerts, detector windows,
activity, incidents and decisions, in process through the example app (the leak suite,
``test_leak.py``, does the same under two uvicorn workers on Redis).

Tenants ``aa`` and ``bb`` each get a tenant admin key; the same user name (``alice``)
and the same client address act in both, so anything keyed without the tenant would
show up in the other."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security.tenancy.context import tenant_scope
from tests.tenancy import test_app as base
from tests.tenancy.test_app import ADMIN, platform_admin, tenant

app, client = base.app, base.client  # the example app with tenancy, and its client

SQLI = {"q": "1' OR '1'='1' --"}
WRONG = {"username": "alice", "password": "not-her-password"}


async def tenant_admins(client: httpx.AsyncClient, *ids: str) -> dict[str, dict[str, str]]:
    """Create each tenant; the headers of its admin (its key, inside it)."""
    out = {}
    for tid in ids:
        made = await client.post(
            "/api/security/tenants", json={"id": tid, "plan": "pro"}, headers=ADMIN
        )
        assert made.status_code == 201, made.text
        out[tid] = {"X-API-Key": made.json()["admin_key"], "X-Tenant": tid}
    return out


async def reauthenticated(client: httpx.AsyncClient, tid: str) -> dict[str, str]:
    """A session of a new user of ``tid``, re-authenticated (decisions need one)."""
    carol = {"username": "carol", "password": "a-long-enough-passphrase-2024"}
    made = await client.post("/signup", json=carol, headers=tenant(tid))
    assert made.status_code == 201, made.text
    login = await client.post("/login", json=carol, headers=tenant(tid))
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}", **tenant(tid)}
    again = await client.post("/reauth", json={"password": carol["password"]}, headers=bearer)
    assert again.status_code == 200, again.text
    return {"Authorization": bearer["Authorization"]}


async def settle(app: FastAPI) -> None:
    """Every queued event analysed, every buffered activity row stored."""
    stack = app.state.pynomaly_security
    await stack.security_monitor.flush(timeout=5.0)
    await stack.user_tracker.flush()


async def get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
    """``GET /api/security<path>``: a 200, and its JSON."""
    answer = await client.get("/api/security" + path, headers=headers)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


@pytest.mark.anyio
async def test_alerts_detector_windows_and_activity_are_the_tenants(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admins = await tenant_admins(client, "aa", "bb")
    # alice of aa reaches the lock (3); alice of bb fails twice: two windows, one lock.
    for tid, tries in (("aa", 3), ("bb", 2)):
        for _ in range(tries):
            await client.post("/login", json=WRONG, headers=tenant(tid))
    assert (await client.get("/items", params=SQLI, headers=tenant("aa"))).status_code == 403
    await settle(app)

    mine = (await get(client, "/alerts", admins["aa"]))["alerts"]
    assert {a["alert_type"] for a in mine} >= {"brute_force", "injection_attack"}
    assert {a["tenant"] for a in mine} == {"aa"}
    assert (await get(client, "/alerts", admins["bb"]))["alerts"] == []
    with tenant_scope("bb"):  # bb's detector never reached the lock: no alert at all
        assert await app.state.pynomaly_security.security_monitor.get_active_alerts() == []
    # The platform admin: every tenant's without X-Tenant, one tenant's with it.
    every = (await get(client, "/alerts", ADMIN))["alerts"]
    assert {a["alert_id"] for a in mine} <= {a["alert_id"] for a in every}
    assert (await get(client, "/alerts", {**ADMIN, "X-Tenant": "bb"}))["alerts"] == []

    # Another tenant's alert id is unknown; a tenant key works in its own tenant only,
    # and only on the per-tenant routes.
    other = await client.post(
        f"/api/security/alerts/{mine[0]['alert_id']}/acknowledge", headers=admins["bb"]
    )
    assert other.status_code == 404
    crossed = {**admins["aa"], "X-Tenant": "bb"}
    assert (await client.get("/api/security/alerts", headers=crossed)).status_code == 401
    assert (await client.get("/api/security/audit", headers=admins["aa"])).status_code == 401
    assert (await client.get("/api/security/status", headers=admins["aa"])).status_code == 401

    # Activity: alice's sign-ins are two streams, one per tenant.
    for tid, tries in (("aa", 3), ("bb", 2)):
        seen = await get(client, "/users/alice/activity", admins[tid])
        assert seen["count"] == tries, (tid, seen)


@pytest.mark.anyio
async def test_decisions_apply_to_their_tenant_and_the_platforms_to_all(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admins = await tenant_admins(client, "aa", "bb")
    for tid in admins:  # making and reverting decisions needs a fresh session too
        admins[tid] |= await reauthenticated(client, tid)
    ban = {"scope": "route", "value": "/items", "action": "ban"}
    made = await client.post("/api/security/decisions", json=ban, headers=admins["aa"])
    assert made.status_code == 201, made.text
    decision = made.json()
    assert decision["tenant"] == "aa"
    assert (await client.get("/items", headers=tenant("aa"))).status_code == 403
    assert (await client.get("/items", headers=tenant("bb"))).status_code == 200

    # bb's admin does not see it, cannot read or revert it by id.
    assert (await get(client, "/decisions", admins["bb"]))["decisions"] == []
    path = f"/api/security/decisions/{decision['decision_id']}"
    assert (await client.get(path, headers=admins["bb"])).status_code == 404
    assert (await client.delete(path, headers=admins["bb"])).status_code == 404

    # bb banning the same route is its own decision (another id), in force for bb only.
    same = await client.post("/api/security/decisions", json=ban, headers=admins["bb"])
    assert same.status_code == 201
    assert same.json()["decision_id"] != decision["decision_id"]
    assert (await client.get("/items", headers=tenant("bb"))).status_code == 403

    # A platform decision applies to every tenant; the platform admin lists all three.
    platform = {"scope": "route", "value": "/me", "action": "ban"}
    made = await client.post(
        "/api/security/decisions", json=platform, headers=await platform_admin(client)
    )
    assert made.status_code == 201, made.text
    assert made.json()["tenant"] is None
    for tid in ("aa", "bb"):
        assert (await client.get("/me", headers=tenant(tid))).status_code == 403
    listed = (await get(client, "/decisions", ADMIN))["decisions"]
    assert sorted(str(d["tenant"]) for d in listed) == ["None", "aa", "bb"]
    inside = (await get(client, "/decisions", {**ADMIN, "X-Tenant": "aa"}))["decisions"]
    assert [d["tenant"] for d in inside] == ["aa"]


@pytest.mark.anyio
async def test_incidents_open_in_the_tenant_whose_alerts_they_follow(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admins = await tenant_admins(client, "aa", "bb")
    # An injection campaign (three routes from one address) in aa only.
    for route in ("/items", "/me", "/nowhere"):
        assert (await client.get(route, params=SQLI, headers=tenant("aa"))).status_code == 403
    await settle(app)
    found = (await get(client, "/incidents", admins["aa"]))["incidents"]
    assert found, "the injection campaign opened no incident"
    assert {i["tenant"] for i in found} == {"aa"}
    assert (await get(client, "/incidents", admins["bb"]))["incidents"] == []
    one = f"/api/security/incidents/{found[0]['incident_id']}"
    assert (await client.get(one, headers=admins["bb"])).status_code == 404
    assert (await client.get(one, headers=admins["aa"])).status_code == 200
    every = (await get(client, "/incidents", ADMIN))["incidents"]
    assert {i["incident_id"] for i in found} <= {i["incident_id"] for i in every}
