"""``/api/security/policies`` and the ``require``/``enforce`` dependencies on the example
app, in process: default deny before any policy; changes need the admin key and a
re-authenticated session; a policy is created, activated, a stricter version shadowed
(disagreements in the statistics), replayed, evaluated with its explanation,
activated (403 with a generic code, the explanation in the audit trail), rolled back
and removed; bad input is 4xx with a reason, unknown ids 404 (issue 17, items 3-6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from pynomaly_security.policy import Principal, Resource
from pynomaly_security.policy.enforce import enforce, require
from pynomaly_security.settings import SecuritySettings
from tests.incidents.test_api import ADMIN, KEY, admin_session

BASE = "/api/security/policies"
OWNERS = {"1": "alice", "2": "bob"}


def who(request: Request) -> Principal:
    """The test's authentication: the user a header names (the app's own in real life)."""
    name = request.headers.get("x-user", "anonymous")
    return Principal(name, roles=frozenset({"admin"} if name == "root" else {"staff"}))


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    from examples.app import create_app

    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    application = create_app(settings)

    @application.get(
        "/orders/{order_id}", dependencies=[Depends(require("orders:read", principal=who))]
    )
    async def read_order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    @application.delete("/orders/{order_id}", status_code=204)
    async def delete_order(request: Request, order_id: str) -> None:
        # The resource loaded first: owner rules need its owner.
        order = Resource(type="order", id=order_id, owner=OWNERS.get(order_id))
        await enforce(request, "orders:delete", order, principal=who(request))

    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


READERS: dict[str, Any] = {
    "id": "orders",
    "rules": [
        {"id": "staff-read", "effect": "allow", "principals": ["role:staff", "role:admin"],
         "actions": ["orders:read"], "resources": ["/orders/{id}"]},
        {"id": "owner-delete", "effect": "allow", "principals": ["*"],
         "actions": ["orders:delete"], "resources": ["order:*"],
         "when": {"resource": {"owner_is_principal": True}}},
    ],
}  # fmt: skip
NO_BOB = {
    **READERS,
    "rules": [
        *READERS["rules"],
        {"id": "no-bob", "effect": "deny", "principals": ["user:bob"], "actions": ["orders:*"]},
    ],
}


@pytest.mark.anyio
async def test_policy_lifecycle_through_the_api(app: FastAPI) -> None:
    """Default deny, create (401 without a session), activate, shadow, stats, replay,
    evaluate, activate (403 + audit), rollback, versions, remove."""
    async with _client(app) as admin:
        bob = {"x-user": "bob"}
        denied = await admin.get("/orders/1", headers=bob)
        assert denied.status_code == 403 and denied.json()["detail"]["error"] == "forbidden"

        assert (await admin.post(BASE, json=READERS)).status_code == 401
        assert (await admin.post(BASE, json=READERS, headers=ADMIN)).status_code == 401
        session = await admin_session(admin)
        made = await admin.post(BASE, json=READERS, headers=session)
        assert made.status_code == 201, made.text
        assert made.json()["version"] == 1 and made.json()["status"] == "draft"
        assert (await admin.post(BASE, json=READERS, headers=session)).status_code == 409

        activated = await admin.post(f"{BASE}/orders/versions/1/activate", headers=session)
        assert activated.status_code == 200 and activated.json()["status"] == "active"
        assert (await admin.get("/orders/1", headers=bob)).status_code == 200
        assert (await admin.delete("/orders/2", headers=bob)).status_code == 204
        assert (await admin.delete("/orders/1", headers=bob)).status_code == 403  # not the owner

        v2 = await admin.put(f"{BASE}/orders", json=NO_BOB, headers=session)
        assert v2.status_code == 200 and v2.json()["parent"] == 1
        shadowed = await admin.post(f"{BASE}/orders/versions/2/shadow", headers=session)
        assert shadowed.status_code == 200 and shadowed.json()["status"] == "shadow"
        assert (await admin.get("/orders/1", headers=bob)).status_code == 200  # not enforced
        stats = (await admin.get(f"{BASE}/stats", headers=ADMIN)).json()
        assert stats["shadow_disagreements"] == 1
        assert stats["disagreements"][0]["shadow"]["rule_id"] == "no-bob"
        assert (
            stats["compliance"]["routes_covered"] >= 1 and 0 < stats["compliance"]["score"] <= 100
        )

        replay = await admin.post(f"{BASE}/orders/replay", json={"version": 2}, headers=ADMIN)
        assert replay.status_code == 200 and replay.json()["flipped"] >= 2

        question = {
            "principal": {"id": "bob", "roles": ["staff"]},
            "action": "orders:read",
            "resource": {"path": "/orders/{id}"},
        }
        answer = (await admin.post(f"{BASE}/evaluate", json=question, headers=ADMIN)).json()
        assert answer["allowed"] is True and answer["rule_id"] == "staff-read"
        assert answer["shadow"]["allowed"] is False and answer["shadow"]["rule_id"] == "no-bob"

        assert (
            await admin.post(f"{BASE}/orders/versions/2/activate", headers=session)
        ).status_code == 200
        refused = await admin.get("/orders/1", headers=bob)
        assert refused.status_code == 403 and refused.json()["detail"]["error"] == "forbidden"
        assert "no-bob" not in refused.text  # the client learns nothing of the rules
        assert (await admin.get("/orders/1", headers={"x-user": "carol"})).status_code == 200

        assert (
            await admin.post(f"{BASE}/orders/versions/2/rollback", headers=session)
        ).status_code == 409
        rolled = await admin.post(f"{BASE}/orders/versions/1/rollback", headers=session)
        assert rolled.status_code == 200 and rolled.json()["version"] == 1
        assert (await admin.get("/orders/1", headers=bob)).status_code == 200
        versions = (await admin.get(f"{BASE}/orders/versions", headers=ADMIN)).json()
        assert [(v["version"], v["status"]) for v in versions] == [(2, "retired"), (1, "active")]
        listed = (await admin.get(BASE, headers=ADMIN)).json()
        assert listed == [{"policy_id": "orders", "latest": 2, "active": 1, "shadow": None}]
        assert (await admin.get(f"{BASE}/orders", params={"version": 2}, headers=ADMIN)).json()[
            "body"
        ]["rules"][2]["id"] == "no-bob"

        assert (await admin.delete(f"{BASE}/orders", headers=session)).status_code == 204
        assert (await admin.get(f"{BASE}/orders", headers=ADMIN)).status_code == 404
        assert (await admin.get("/orders/1", headers=bob)).status_code == 403

    logger = app.state.pynomaly_security.audit_logger
    await logger.flush()
    denials = await logger.query(event_type="access_denied", limit=10)
    assert any("no-bob" in str(d) and "orders@v2" in str(d) for d in denials)
    changes = [
        e["action"]
        for e in await logger.query(limit=500)
        if str(e.get("action", "")).startswith("policy_")
    ]
    for action in ("policy_created", "policy_activated", "policy_updated", "policy_shadowed",
                   "policy_rolled_back", "policy_removed"):  # fmt: skip
        assert action in changes


@pytest.mark.anyio
async def test_bad_input_is_4xx_with_a_reason(app: FastAPI) -> None:
    """422 for an invalid policy (naming the rule and field) or a body that is not the
    path's; 404 for unknown policies and versions; 422 for an evaluation without a
    resource."""
    async with _client(app) as admin:
        session = await admin_session(admin)
        bad = {"id": "p", "rules": [{"id": "r", "effect": "allow", "principals": ["*"],
               "actions": ["*"], "when": {"time": {"tz": "Mars/Olympus"}}}]}  # fmt: skip
        answer = await admin.post(BASE, json=bad, headers=session)
        assert answer.status_code == 422 and "unknown time zone" in answer.text
        assert "rules" in answer.text and "tz" in answer.text
        assert (await admin.post(BASE, json=READERS, headers=session)).status_code == 201
        mismatch = await admin.put(f"{BASE}/other", json=READERS, headers=session)
        assert mismatch.status_code == 422
        for method, path in [
            ("GET", f"{BASE}/nope"),
            ("GET", f"{BASE}/nope/versions"),
            ("POST", f"{BASE}/nope/versions/1/activate"),
            ("POST", f"{BASE}/orders/versions/9/shadow"),
            ("DELETE", f"{BASE}/nope"),
        ]:
            answer = await admin.request(method, path, headers=session)
            assert answer.status_code == 404, (method, path, answer.text)
        replay = await admin.post(f"{BASE}/orders/replay", json={"version": 9}, headers=ADMIN)
        assert replay.status_code == 404
        question = {"principal": {"id": "x"}, "action": "a:b", "resource": {}}
        assert (
            await admin.post(f"{BASE}/evaluate", json=question, headers=ADMIN)
        ).status_code == 422


@pytest.mark.anyio
async def test_the_demo_office_hours_policy(app: FastAPI) -> None:
    """The issue's demo on the example app: deny DELETE /items/* outside office hours
    except for admins with MFA. On a Saturday alice (admin, no MFA) and anonymous
    callers are refused before the app; on Monday at noon the app answers (404: no
    such item)."""
    engine = app.state.pynomaly_security.policies
    office = {"start": "09:00", "end": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
    policy = {
        "id": "office",
        "rules": [
            {"id": "late-delete", "effect": "deny", "principals": ["*"], "actions": ["DELETE"],
             "resources": ["/items/*"],
             "unless": [{"time": office}, {"user": {"roles": ["admin"], "mfa": True}}]},
        ],
    }  # fmt: skip
    saturday = 1_796_472_000.0  # 2026-12-05 12:00 UTC
    engine.clock = lambda: saturday
    async with _client(app) as client:
        session = await admin_session(client)
        await engine.add_policy(policy)
        await engine.activate("office", 1)
        assert (await client.delete("/items/1")).status_code == 403
        refused = await client.delete("/items/1", headers=session)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        engine.clock = lambda: saturday + 2 * 86_400
        assert (await client.delete("/items/1", headers=session)).status_code == 404
        # Who the coarse layer saw: alice from her verified token, an admin without MFA.
        scope = {"type": "http", "method": "DELETE", "path": "/items/1", "query_string": b"",
                 "headers": [(b"authorization", session["Authorization"].encode())]}  # fmt: skip
        alice = await engine.principal_of(scope)
        assert alice is not None and alice.roles == frozenset({"admin"}) and not alice.mfa
        assert await engine.principal_of({**scope, "headers": []}) is None
