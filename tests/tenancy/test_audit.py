"""The audit trail per tenant over HTTP on the example app (issue 21): records in two
tenants, each tenant admin reads and verifies its own only, the platform admin all or
one (``X-Tenant``); deleting one tenant shreds its personal data, anonymous clients'
IPs included, while the chain verifies and the other tenant's records still read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.tenancy.test_app import ADMIN, ALICE, platform_admin, tenant

CLIENT_IP = "198.51.100.7"  # the client fixture's address (test_app.py)


async def records(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
    answer = await client.get(path, params={"limit": 1000}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


@pytest.mark.anyio
async def test_each_tenant_reads_and_verifies_its_audit_records_and_deletion_shreds(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = {}
    for tid in ("initech", "hooli"):
        created = await client.post("/api/security/tenants", json={"id": tid}, headers=ADMIN)
        assert created.status_code == 201, created.text
        made[tid] = {"X-API-Key": created.json()["admin_key"]}
        # An anonymous request and a failed sign-in naming no user of the tenant.
        assert (await client.get("/items", headers=tenant(tid))).status_code == 200
        failed = await client.post("/login", json=ALICE, headers=tenant(tid))
        assert failed.status_code == 401
    await app.state.pynomaly_security.audit_logger.flush()

    for tid, other in (("initech", "hooli"), ("hooli", "initech")):
        own = await records(client, f"/api/security/tenants/{tid}/audit", made[tid])
        assert own and {r["tenant"] for r in own} == {tid}
        access = [r for r in own if r["kind"] == "request"]
        assert {(r["path"], r["source_ip"], r["user_id"]) for r in access} >= {
            ("/items", CLIENT_IP, None)
        }
        assert any(r["event_type"] == "request_refused" or r["kind"] == "security" for r in own)
        seqs = sorted({r["tenant_seq"] for r in own})
        assert seqs == list(range(1, len(seqs) + 1))
        verified = await client.get(f"/api/security/tenants/{tid}/audit/verify", headers=made[tid])
        assert verified.json()["ok"] and verified.json()["tenant"] == tid, verified.text
        assert verified.json()["tenant_records"] == len(seqs)
        denied = await client.get(f"/api/security/tenants/{other}/audit", headers=made[tid])
        assert denied.status_code in (401, 404)
        # The platform admin: one tenant with X-Tenant.
        scoped = await records(client, "/api/security/audit", {**ADMIN, **tenant(tid)})
        assert {r.get("tenant") for r in scoped} == {tid}
    everyone = await records(client, "/api/security/audit", ADMIN)
    assert {r.get("tenant") for r in everyone} >= {"initech", "hooli", None}

    deleted = await client.delete(
        "/api/security/tenants/hooli", headers=await platform_admin(client)
    )
    assert deleted.status_code == 200, deleted.text
    await app.state.pynomaly_security.audit_logger.flush()
    everyone = await records(client, "/api/security/audit", ADMIN)
    gone = [r for r in everyone if r.get("tenant") == "hooli"]
    assert gone and {r["source_ip"] for r in gone} == {"[erased]"}, [
        (r["kind"], r["event_type"], r["user_id"], r.get("message")) for r in gone
    ]
    kept = [r for r in everyone if r.get("tenant") == "initech"]
    assert CLIENT_IP in {r["source_ip"] for r in kept}
    whole = await client.get("/api/security/audit/verify", headers=ADMIN)
    assert whole.json()["ok"], whole.text
    one = await client.get("/api/security/tenants/initech/audit/verify", headers=made["initech"])
    assert one.json()["ok"] and one.json()["tenant_records"] == len({r["tenant_seq"] for r in kept})
