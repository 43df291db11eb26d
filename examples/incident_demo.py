"""``python -m examples.incident_demo``: an incident opens, a playbook contains it and an
admin closes it through the admin API, in process (``make demo`` runs it first).

The example app with ``brute_force_success`` turned ``on`` (``CORRELATION_RESPONSES``)
and the burst's own rule kept as its step only, an audit trail in a temporary SQLite
file. An attacker address fails twelve sign-ins, then signs in as bob: the correlation
opens one incident and ``account_takeover_response`` bans the address, revokes bob's
sessions and requires MFA of him; the attacker's next request is refused. alice (an
admin) reads the timeline, closes the incident with a re-authenticated session, lifts
the ban; the audit verifier confirms the trail.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from typing import Any

import httpx

from examples.app import DEMO_USERS, create_app
from pynomaly_security.crypto import generate_master_key
from pynomaly_security.settings import SecuritySettings

KEY = "demo-admin-key-0123456789abcdef-incidents"
ATTACKER, ADMIN_IP = "203.0.113.50", "198.51.100.7"
API = "/api/security"


async def story(say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the story, saying each step; what it saw (for tests)."""
    seen: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = SecuritySettings(
            _env_file=None,
            admin_api_key=KEY,
            master_key=generate_master_key(),
            audit_db_url=f"sqlite:///{tmp}/audit.db",
            correlation_responses={"brute_force_success": "on"},
            correlation_disabled_rules=["brute_force"],
            tenancy_enabled=False,  # the story's requests name no tenant, whatever the env says
        )
        app = create_app(settings)
        stack = app.state.pynomaly_security
        async with app.router.lifespan_context(app):

            def client(ip: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(ip, 40000))
                return httpx.AsyncClient(transport=transport, base_url="http://localhost")

            async with client(ATTACKER) as attacker, client(ADMIN_IP) as admin:
                h = {"X-API-Key": KEY}
                say(f"1. {ATTACKER} fails 12 sign-ins, then signs in as bob")
                # Four each of three names: under the lockout's five per (user, address).
                for name in [n for _ in range(4) for n in ("alice", "bob", "mallory")]:
                    await attacker.post("/login", json={"username": name, "password": "x" * 12})
                good = await attacker.post(
                    "/login", json={"username": "bob", "password": DEMO_USERS["bob"]}
                )
                say(f"   bob's sign-in: {good.status_code}")
                await stack.security_monitor.flush(timeout=10.0)
                refused = await attacker.get("/search", params={"q": "x"})
                seen["refused"] = refused.status_code
                say(f"2. the attacker's next request: {refused.status_code}")
                found = (await admin.get(f"{API}/incidents", headers=h)).json()["incidents"]
                [incident] = found
                seen["incident"] = incident
                inc = f"{API}/incidents/{incident['incident_id']}"
                say(f"   incident {incident['incident_id']} ({incident['source']})")
                say(f"   status: {incident['status']}")
                timeline = (await admin.get(f"{inc}/timeline", headers=h)).json()
                seen["timeline"] = timeline
                say(f"3. timeline (verified: {timeline['verified']}):")
                for e in timeline["entries"]:
                    d = e["details"]
                    what = d.get("step") or d.get("to") or ""
                    say(f"   seq {e['seq']:>3} {e['action']:<14} {what} {d.get('status') or ''}")
                creds = {"username": "alice", "password": DEMO_USERS["alice"]}
                token = (await admin.post("/login", json=creds)).json()["access_token"]
                session = {**h, "Authorization": f"Bearer {token}"}
                await admin.post("/reauth", json={"password": creds["password"]}, headers=session)
                closed = await admin.patch(
                    inc, json={"status": "closed", "reason": "address banned"}, headers=session
                )
                seen["closed"] = closed.json()
                body = closed.json()
                say(f"4. alice closes it: {body['status']}, metrics {body['metrics']}")
                decisions = (await admin.get(f"{API}/decisions", headers=h)).json()["decisions"]
                [ban] = [d for d in decisions if d["scope"] == "ip"]
                await admin.delete(f"{API}/decisions/{ban['decision_id']}", headers=session)
                back = await attacker.get("/search", params={"q": "x"})
                seen["back"] = back.status_code
                say(f"5. ban {ban['decision_id']} lifted: the address gets {back.status_code}")
            result = await stack.audit_logger.verify()
            seen["verify"] = result.ok
            say(f"6. audit verify: {'OK' if result.ok else 'FAIL'}, {result.count} records")
    return seen


if __name__ == "__main__":
    asyncio.run(story())
