"""``/api/security/decisions`` on the example app, in process: making a decision needs
the admin key and a re-authenticated session, it is enforced at once, listed with
filters and pages, reverted (404 after), and every change is in the audit trail;
bad input is 422 with a reason, refused decisions 409 with a code (issue 16, item 3)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security.settings import SecuritySettings
from tests.incidents.test_api import ADMIN, KEY, admin_session

BASE = "/api/security/decisions"
ADMIN_IP = "198.51.100.9"


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
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.anyio
async def test_a_decision_is_made_enforced_listed_and_reverted(
    app: FastAPI, tmp_path: Path
) -> None:
    """The key alone is 401 (re-authentication needed); with alice's fresh session the
    ban is 201 and the address is refused at once; the list finds it by scope and
    value; DELETE reverts it (the address is served again) and a second DELETE is 404.
    The audit trail holds both changes, without the banned address."""
    async with _client(app, ADMIN_IP) as admin, _client(app, "203.0.113.50") as other:
        body = {"scope": "ip", "value": "203.0.113.50", "action": "ban", "reason": "probe"}
        assert (await admin.post(BASE, json=body)).status_code == 401
        refused = await admin.post(BASE, json=body, headers=ADMIN)
        assert refused.status_code == 401 and "re-authenticated" in refused.text
        session = await admin_session(admin)
        made = await admin.post(BASE, json=body, headers=session)
        assert made.status_code == 201, made.text
        decision = made.json()
        assert decision["origin"] == "manual" and decision["actor"] not in ("", "admin")
        assert (await other.get("/health")).status_code == 200  # health paths: allow-listed
        banned = await other.get("/search", params={"q": "x"})
        assert banned.status_code == 403 and banned.json()["error"] == "banned"

        listed = await admin.get(BASE, params={"scope": "ip", "value": "203.0.113.50"},
                                 headers=ADMIN)  # fmt: skip
        assert [d["decision_id"] for d in listed.json()["decisions"]] == [decision["decision_id"]]
        assert (await admin.get(BASE, params={"scope": "user"}, headers=ADMIN)).json()["count"] == 0
        one = await admin.get(f"{BASE}/{decision['decision_id']}", headers=ADMIN)
        assert one.status_code == 200 and one.json()["reason"] == "probe"

        reverted = await admin.delete(f"{BASE}/{decision['decision_id']}", headers=session)
        assert reverted.status_code == 200, reverted.text
        assert (await other.get("/search", params={"q": "x"})).status_code == 200
        again = await admin.delete(f"{BASE}/{decision['decision_id']}", headers=session)
        assert again.status_code == 404
        assert (
            await admin.get(f"{BASE}/{decision['decision_id']}", headers=ADMIN)
        ).status_code == 404

    await app.state.pynomaly_security.audit_logger.flush()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        text = "\n".join(str(row) for row in db.execute("SELECT * FROM audit_records"))
    assert "203.0.113.50" not in text


@pytest.mark.anyio
async def test_bad_input_and_refused_decisions_answer_4xx_with_a_reason(app: FastAPI) -> None:
    """422: unknown scope or action, a value that is no address, a negative ttl;
    409 with a code: the acting admin's own address, an allow-listed path; 404 for
    ids that are malformed or unknown; 422 for a bad list filter."""
    async with _client(app, ADMIN_IP) as admin:
        session = await admin_session(admin)
        cases = [
            ({"scope": "planet", "value": "x", "action": "ban"}, 422, None),
            ({"scope": "ip", "value": "x", "action": "nuke"}, 422, None),
            ({"scope": "ip", "value": "999.1.1.1", "action": "ban"}, 422, "not an IP"),
            ({"scope": "ip", "value": "192.0.2.1", "action": "ban", "ttl": -1}, 422, None),
            ({"scope": "ip", "value": ADMIN_IP, "action": "ban"}, 409, "acting_admin"),
            ({"scope": "route", "value": "/health", "action": "ban"}, 409, "allow_listed"),
        ]
        for body, status, text in cases:
            answer = await admin.post(BASE, json=body, headers=session)
            assert answer.status_code == status, (body, answer.text)
            if text is not None:
                assert text in answer.text
        for bad in ("nope", "dec-000000000000000000000000"):
            assert (await admin.get(f"{BASE}/{bad}", headers=ADMIN)).status_code == 404
            assert (await admin.delete(f"{BASE}/{bad}", headers=session)).status_code == 404
        # alice's own user id (the actor of a decision she made) is the acting admin.
        mine = await admin.post(
            BASE, json={"scope": "tenant", "value": "t1", "action": "read_only"}, headers=session
        )
        own = {"scope": "user", "value": mine.json()["actor"], "action": "ban"}
        answer = await admin.post(BASE, json=own, headers=session)
        assert answer.status_code == 409 and "acting_admin" in answer.text
        assert (await admin.get("/api/security/intel", headers=ADMIN)).json() == []
        health = (await admin.get("/api/security/health", headers=ADMIN)).json()
        assert health["components"]["decisions"] == {
            "enabled": True,
            "in_force": 1,  # the tenant decision above
            "intel_lists": [],
        }
        assert (await admin.get("/api/security/intel")).status_code == 401
        bad_filter = await admin.get(BASE, params={"scope": "ip", "value": "x"}, headers=ADMIN)
        assert bad_filter.status_code == 422
        assert (await admin.get(BASE, params={"limit": 0}, headers=ADMIN)).status_code == 422


@pytest.mark.anyio
async def test_user_session_and_mfa_decisions_read_the_bearer_token(app: FastAPI) -> None:
    """alice signed in with a password only: a ``require_mfa`` decision on her user id
    answers her requests RFC 9470's challenge (a request without her token passes);
    a ban of her session refuses that session's requests."""
    decisions = app.state.pynomaly_security.decisions
    async with _client(app, "192.0.2.40") as c:
        session = await admin_session(c)
        bearer = {"Authorization": session["Authorization"]}
        claims = app.state.pynomaly_auth.tokens.decode(bearer["Authorization"][7:])
        mfa = await decisions.add("user", claims["sub"], "require_mfa", origin="playbook:ato")
        asked = await c.get("/search", params={"q": "x"}, headers=bearer)
        assert asked.status_code == 401, asked.text
        assert 'error="insufficient_user_authentication"' in asked.headers["www-authenticate"]
        assert (await c.get("/search", params={"q": "x"})).status_code == 200
        await decisions.revert(mfa.decision_id)
        await decisions.add("session", claims["sid"], "ban", origin="playbook:ato")
        banned = await c.get("/search", params={"q": "x"}, headers=bearer)
        assert banned.status_code == 403 and banned.json()["error"] == "banned"
