"""The README's policy walkthrough (issue 17, "Done when") through the example app in
process: an admin creates a policy denying ``DELETE /items/*`` outside office hours
except for admins with MFA, shadows it and sees the disagreement, activates it, sees
the 403 and its explanation in the audit trail, and rolls back. The policies' clock
is frozen on a Saturday (outside office hours); TOTP codes are the real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from examples.app import DEMO_MFA_ADMIN, DEMO_USERS, create_app
from pynomaly_security.settings import SecuritySettings
from tests.incidents.test_api import ADMIN, KEY, admin_session
from tests.policy.test_engine import SATURDAY

BASE = "/api/security/policies"
SECRET = pyotp.random_base32(32)

# The walkthrough's two versions, as the README writes them.
BASELINE: dict[str, Any] = {
    "id": "items",
    "description": "the items API",
    "rules": [{"id": "items", "effect": "allow", "principals": ["*"], "actions": ["*"],
               "resources": ["/items", "/items/*"]}],
}  # fmt: skip
OFFICE_HOURS: dict[str, Any] = {
    **BASELINE,
    "rules": [
        *BASELINE["rules"],
        {
            "id": "off-hours-delete",
            "effect": "deny",
            "principals": ["*"],
            "actions": ["DELETE"],
            "resources": ["/items/*"],
            "unless": [
                {"time": {"start": "09:00", "end": "18:00", "tz": "Europe/Paris",
                          "days": ["mon", "tue", "wed", "thu", "fri"]}},
                {"user": {"roles": ["admin"], "mfa": True}},
            ],
            "description": "deletes outside office hours need an admin with MFA",
        },
    ],
}  # fmt: skip


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    application = create_app(settings, demo_totp_secret=SECRET)
    engine = application.state.example_stack.policies
    engine.clock = lambda: SATURDAY  # Saturday noon: outside office hours
    async with application.router.lifespan_context(application):
        yield application


async def bearer(
    client: httpx.AsyncClient, name: str, password: str, **extra: str
) -> dict[str, str]:
    login = await client.post("/login", json={"username": name, "password": password, **extra})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.mark.anyio
async def test_the_policy_walkthrough(app: FastAPI) -> None:
    """Baseline active; the office-hours version in shadow lets bob's Saturday delete
    through and lists it as a disagreement (carol, admin with MFA, agrees on both);
    replay names the same flip; activated, bob gets a bare 403 and the audit trail
    holds the rule, version and reasons, while carol still deletes; rollback lets bob
    through again."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for n in range(1, 5):
            made = await c.post("/items", json={"name": f"item {n}", "price": n})
            assert made.status_code == 201
        alice = await admin_session(c)  # admin key + re-authenticated session
        bob = await bearer(c, "bob", DEMO_USERS["bob"])
        carol_name, carol_password = DEMO_MFA_ADMIN
        carol = await bearer(c, carol_name, carol_password, totp=pyotp.TOTP(SECRET).now())
        password_only = {"username": carol_name, "password": carol_password}
        needs_code = await c.post("/login", json=password_only)
        assert needs_code.status_code == 401 and "mfa_required" in needs_code.text

        assert (await c.post(BASE, json=BASELINE, headers=alice)).status_code == 201
        assert (await c.post(f"{BASE}/items/versions/1/activate", headers=alice)).status_code == 200
        assert (await c.put(f"{BASE}/items", json=OFFICE_HOURS, headers=alice)).status_code == 200
        shadowed = await c.post(f"{BASE}/items/versions/2/shadow", headers=alice)
        assert shadowed.json()["status"] == "shadow"

        assert (await c.delete("/items/1", headers=bob)).status_code == 204  # not enforced
        assert (await c.delete("/items/2", headers=carol)).status_code == 204
        stats = (await c.get(f"{BASE}/stats", headers=ADMIN)).json()
        assert stats["shadow_disagreements"] == 1
        [listed] = stats["disagreements"]
        assert (listed["action"], listed["resource"]) == ("DELETE", "/items/1")
        assert listed["active"]["allowed"] is True
        assert listed["shadow"] == {"allowed": False, "policy_id": "items",
                                    "rule_id": "off-hours-delete", "version": 2}  # fmt: skip
        replay = (await c.post(f"{BASE}/items/replay", json={"version": 2}, headers=ADMIN)).json()
        assert replay["flipped"] == 1 and replay["flips"][0]["resource"] == "/items/1"

        assert (await c.post(f"{BASE}/items/versions/2/activate", headers=alice)).status_code == 200
        refused = await c.delete("/items/3", headers=bob)
        assert refused.status_code == 403
        assert "off-hours" not in refused.text  # the client gets a generic code only
        no_mfa = await c.delete("/items/3", headers={"Authorization": alice["Authorization"]})
        assert no_mfa.status_code == 403  # an admin without MFA is refused too
        assert (await c.delete("/items/3", headers=carol)).status_code == 204
        findings = (await c.get(f"{BASE}/stats", headers=ADMIN)).json()["compliance"]
        kinds = {f["kind"] for f in findings["static_findings"]}
        assert kinds == {"overlaps_deny"}  # the exception, explained, not a defect

        await app.state.pynomaly_security.audit_logger.flush()
        trail = await c.get("/api/security/audit", params={"event_type": "access_denied"},
                            headers=ADMIN)  # fmt: skip
        assert trail.status_code == 200, trail.text
        denials = [r for r in trail.json()["items"] if "policy_denied" in str(r)]
        assert len(denials) == 2
        details = denials[0]["details"]
        assert (details["rule_id"], details["version"], details["resource"]) == (
            "off-hours-delete", 2, "/items/3",
        )  # fmt: skip
        assert details["reasons"]

        rolled = await c.post(f"{BASE}/items/versions/1/rollback", headers=alice)
        assert rolled.status_code == 200
        assert (await c.delete("/items/4", headers=bob)).status_code == 204
