"""Playbooks through the example app's admin API, in process (issue 16, item 4): a dry
run changes nothing; a run bans the incident's address (the next request from it is
403), running it again makes no second decision, the timeline shows every step and
verifies; guardrails refuse the acting admin and too many targets; approvals are
single use, for their approvers, and refused once expired; a correlation match opens
one incident and its playbook contains the attacker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import DEMO_USERS, create_app
from pynomaly_security.settings import SecuritySettings
from tests.incidents.test_api import ADMIN, BASE, KEY, admin_session

ATTACKER = "203.0.113.66"
ADMIN_IP = "198.51.100.9"
APPROVED = {
    "name": "approved_ban",
    "version": 3,
    "steps": [
        {
            "id": "ban_source",
            "action": "decision",
            "params": {"scope": "ip", "action": "ban", "ttl": "1h"},
            "approval": {"approvers": ["alice"], "ttl": "15m"},
        }
    ],
}


class FakeClock:
    """The approvals' clock: moved by the test, never slept on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _app(tmp_path: Path, **extra: Any) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        **extra,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async for application in _app(tmp_path):
        yield application


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _incident(admin: httpx.AsyncClient, ips: list[str]) -> str:
    body = {"title": "SQL Injection Attack", "observables": {"ips": ips, "routes": ["/search"]}}
    made = await admin.post(BASE, json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    return str(made.json()["incident_id"])


async def _decisions(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed = await admin.get("/api/security/decisions", headers=ADMIN)
    return list(listed.json()["decisions"])


@pytest.mark.anyio
async def test_dry_run_then_run_contains_once_and_the_timeline_verifies(app: FastAPI) -> None:
    """The dry run plans the ban and makes no decision; the run (re-authenticated) bans
    the address and raises the route's level, each verified; the attacker then gets 403;
    a second run is ``already_done`` with the same decision; the incident is contained;
    every step is on the timeline, which verifies; reverting the ban lets it back in."""
    async with _client(app, ADMIN_IP) as admin, _client(app, ATTACKER) as attacker:
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 200
        incident_id = await _incident(admin, [ATTACKER])
        url = f"{BASE}/{incident_id}/playbooks/sql_injection_response"

        dry = await admin.post(url, params={"dry_run": "true"}, headers=ADMIN)
        assert dry.status_code == 200, dry.text
        assert dry.json()["status"] == "dry_run"
        ban = dry.json()["steps"][0]
        assert ban["status"] == "planned" and ban["plan"][0]["target"] == ATTACKER
        assert await _decisions(admin) == []
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 200

        assert (await admin.post(url, headers=ADMIN)).status_code == 401  # no session
        session = await admin_session(admin)
        run = await admin.post(url, headers=session)
        assert run.status_code == 200, run.text
        steps = {s["step"]: s for s in run.json()["steps"]}
        assert steps["ban_source"]["status"] == "done" and steps["ban_source"]["verified"]
        assert steps["raise_routes"]["status"] == "done"
        assert steps["notify_team"]["status"] == "skipped"  # no PLAYBOOK_WEBHOOK_URL
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 403

        again = await admin.post(url, headers=session)
        assert [s["status"] for s in again.json()["steps"][:2]] == ["already_done"] * 2
        decisions = await _decisions(admin)
        bans = [d for d in decisions if d["scope"] == "ip"]
        assert len(bans) == 1 and bans[0]["origin"] == "playbook:sql_injection_response"
        assert bans[0]["decision_id"] == steps["ban_source"]["results"][0]["decision_id"]

        incident = (await admin.get(f"{BASE}/{incident_id}", headers=ADMIN)).json()
        assert incident["status"] == "contained"
        timeline = (await admin.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
        assert timeline["verified"] is True, timeline["verification"]
        entries = [
            (e["details"].get("step"), e["details"].get("status"))
            for e in timeline["entries"]
            if e["action"] == "playbook_step"
        ]
        assert entries[:4] == [
            ("ban_source", "planned"),
            ("raise_routes", "planned"),
            ("notify_team", "skipped"),
            ("open_ticket", "skipped"),
        ]
        assert ("ban_source", "done") in entries and ("ban_source", "already_done") in entries
        assert all(ATTACKER not in str(e["details"]) for e in timeline["entries"])

        reverted = await admin.delete(
            f"/api/security/decisions/{bans[0]['decision_id']}", headers=session
        )
        assert reverted.status_code == 200, reverted.text
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 200


@pytest.mark.anyio
async def test_guardrails_refuse_the_acting_admin_and_too_many_targets(app: FastAPI) -> None:
    """The admin's own address in an incident is never banned (refused, the other
    address is); eleven addresses exceed ``max_targets`` and the step is refused whole."""
    async with _client(app, ADMIN_IP) as admin:
        session = await admin_session(admin)
        incident_id = await _incident(admin, [ADMIN_IP, ATTACKER])
        run = await admin.post(f"{BASE}/{incident_id}/playbooks/scanner_response", headers=session)
        results = run.json()["steps"][0]["results"]
        assert results[0] == {"target": ADMIN_IP, "done": False, "refused": "acting_admin"}
        assert results[1]["target"] == ATTACKER and results[1]["done"] is True
        assert (await admin.get("/search")).status_code == 200

        many = await _incident(admin, [f"203.0.113.{n}" for n in range(100, 111)])
        run = await admin.post(f"{BASE}/{many}/playbooks/scanner_response", headers=session)
        step = run.json()["steps"][0]
        assert step["status"] == "refused" and step["code"] == "max_targets"


@pytest.mark.anyio
async def test_unknown_ids_and_bad_params_are_4xx(app: FastAPI) -> None:
    """Unknown incident, playbook or approval: 404; params for an unknown step: 422;
    the list shows every built-in playbook with its version."""
    async with _client(app, ADMIN_IP) as admin:
        listed = await admin.get("/api/security/playbooks", headers=ADMIN)
        assert {p["name"]: p["version"] for p in listed.json()} == {
            "account_takeover_response": 1,
            "brute_force_response": 1,
            "credential_stuffing_response": 1,
            "scanner_response": 1,
            "sql_injection_response": 1,
        }
        incident_id = await _incident(admin, [ATTACKER])
        gone = await admin.post(
            f"{BASE}/inc-00/playbooks/scanner_response?dry_run=true", headers=ADMIN
        )
        assert gone.status_code == 404
        nope = await admin.post(f"{BASE}/{incident_id}/playbooks/nope?dry_run=true", headers=ADMIN)
        assert nope.status_code == 404 and nope.json()["detail"] == "playbook not found"
        bad = await admin.post(
            f"{BASE}/{incident_id}/playbooks/scanner_response?dry_run=true",
            json={"params": {"no_such_step": {"ttl": "1h"}}},
            headers=ADMIN,
        )
        assert bad.status_code == 422 and "unknown steps" in bad.text
        session = await admin_session(admin)
        missing = await admin.post(
            "/api/security/approvals/apr-" + "0" * 24 + "/approve", headers=session
        )
        assert missing.status_code == 404


@pytest.mark.anyio
async def test_approvals_single_use_for_approvers_and_refused_once_expired(tmp_path: Path) -> None:
    """A step needing approval pauses the run; bob may not approve it (403); alice's
    approval runs the ban once (a second approve is 409 ``used``); an approval past
    its time-to-live is refused (409 ``expired``) and bans nothing."""
    async for app in _app(tmp_path):
        incidents = app.state.pynomaly_security.incidents
        incidents.playbooks.add(APPROVED)
        clock = FakeClock()
        async with _client(app, ADMIN_IP) as admin, _client(app, ATTACKER) as attacker:
            session = await admin_session(admin)
            incidents.clock = clock
            incident_id = await _incident(admin, [ATTACKER])
            url = f"{BASE}/{incident_id}/playbooks/approved_ban"
            paused = (await admin.post(url, headers=session)).json()
            assert paused["status"] == "awaiting_approval"
            approval_id = paused["steps"][0]["approval_id"]
            assert await _decisions(admin) == []

            bob = {"username": "bob", "password": DEMO_USERS["bob"]}
            login = (await admin.post("/login", json=bob)).json()
            bob_session = {**ADMIN, "Authorization": f"Bearer {login['access_token']}"}
            await admin.post("/reauth", json={"password": bob["password"]}, headers=bob_session)
            who = await admin.post(
                f"/api/security/approvals/{approval_id}/approve", headers=bob_session
            )
            assert who.status_code == 403 and who.json()["detail"]["code"] == "not_an_approver"

            ok = await admin.post(f"/api/security/approvals/{approval_id}/approve", headers=session)
            assert ok.status_code == 200, ok.text
            assert ok.json()["run"]["steps"][0]["status"] == "done"
            assert (await attacker.get("/")).status_code == 403
            twice = await admin.post(
                f"/api/security/approvals/{approval_id}/approve", headers=session
            )
            assert twice.status_code == 409 and twice.json()["detail"]["code"] == "used"

            later = await _incident(admin, ["203.0.113.67"])
            paused = (
                await admin.post(f"{BASE}/{later}/playbooks/approved_ban", headers=session)
            ).json()
            approval_id = paused["steps"][0]["approval_id"]
            clock.now += 15 * 60
            late = await admin.post(
                f"/api/security/approvals/{approval_id}/approve", headers=session
            )
            assert late.status_code == 409 and late.json()["detail"]["code"] == "expired"
            assert len(await _decisions(admin)) == 1


@pytest.mark.anyio
async def test_a_correlation_match_opens_one_incident_and_contains_it(tmp_path: Path) -> None:
    """Twelve failed sign-ins and then bob's success from one address, with
    ``brute_force_success`` turned on: one incident (its dedup key the rule and the
    group), the account takeover playbook run by ``system`` bans the address, and
    the next request from it is 403; the burst's own rule stays a dry run."""
    burst = [name for _ in range(4) for name in ("alice", "bob", "mallory")]
    async for app in _app(tmp_path, correlation_responses={"brute_force_success": "on"}):
        monitor = app.state.pynomaly_security.security_monitor
        async with _client(app, ADMIN_IP) as admin, _client(app, ATTACKER) as attacker:
            for name in burst:
                bad = await attacker.post(
                    "/login", json={"username": name, "password": "nope-1234"}
                )
                assert bad.status_code == 401, bad.text
            good = await attacker.post(
                "/login", json={"username": "bob", "password": DEMO_USERS["bob"]}
            )
            assert good.status_code == 200
            await monitor.flush(timeout=10.0)
            assert (await attacker.get("/")).status_code == 403
            found = (await admin.get(BASE, headers=ADMIN)).json()["incidents"]
            by_source = {i["source"]: i for i in found}
            assert set(by_source) == {"correlation:brute_force", "correlation:brute_force_success"}
            takeover = by_source["correlation:brute_force_success"]
            assert takeover["status"] == "contained" and takeover["observables"]["ips"] == [
                ATTACKER
            ]
            assert by_source["correlation:brute_force"]["status"] == "new"  # dry run only
            [ban] = [d for d in await _decisions(admin) if d["scope"] == "ip"]
            assert ban["origin"] == "playbook:account_takeover_response"
            timeline = (
                await admin.get(f"{BASE}/{takeover['incident_id']}/timeline", headers=ADMIN)
            ).json()
            assert timeline["verified"] is True
            assert [e["details"].get("step") for e in timeline["entries"] if e["action"] == "playbook_step"] == [  # noqa: E501
                "ban_source", "revoke_sessions", "require_mfa", "notify_team", "notify_slack", "notify_email",  # noqa: E501
            ]  # fmt: skip


@pytest.mark.anyio
async def test_revert_through_the_api_needs_reauth_and_lets_the_address_back(
    app: FastAPI,
) -> None:
    """``POST .../playbooks/{name}/revert``: 401 without a re-authenticated session, 404
    for an unknown playbook or incident; with one it reverts the ban (the address is
    served again), names the reverted decision, puts a ``playbook_revert`` entry on a
    timeline that still verifies; run again, the unban's grace period holds."""
    async with _client(app, ADMIN_IP) as admin, _client(app, ATTACKER) as attacker:
        session = await admin_session(admin)
        incident_id = await _incident(admin, [ATTACKER])
        url = f"{BASE}/{incident_id}/playbooks/scanner_response"
        bans = await admin.post(url.replace("scanner", "sql_injection"), headers=session)
        ban_id = bans.json()["steps"][0]["results"][0]["decision_id"]
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 403
        revert = f"{BASE}/{incident_id}/playbooks/sql_injection_response/revert"

        assert (await admin.post(revert, headers=ADMIN)).status_code == 401
        assert (await admin.post(f"{url}x/revert", headers=session)).status_code == 404
        gone = await admin.post(f"{BASE}/inc-00/playbooks/scanner_response/revert", headers=session)
        assert gone.status_code == 404
        done = await admin.post(revert, headers=session)
        assert done.status_code == 200, done.text
        steps = {s["step"]: s["reverted"] for s in done.json()["steps"]}
        assert steps["ban_source"] == [{"decision_id": ban_id, "reverted": True}]
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 200

        timeline = (await admin.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
        assert timeline["verified"] is True, timeline["verification"]
        reverts = [e for e in timeline["entries"] if e["action"] == "playbook_revert"]
        assert reverts and reverts[0]["details"]["decision_ids"] == [ban_id]
        again = await admin.post(url.replace("scanner", "sql_injection"), headers=session)
        # The step runs again (its done mark went with the revert), and the unban's
        # grace period keeps the address from being banned again at once.
        [result] = again.json()["steps"][0]["results"]
        assert result["refused"] == "grace_period"
        assert (await attacker.get("/search", params={"q": "x"})).status_code == 200


@pytest.mark.anyio
async def test_verify_sends_a_request_through_the_app(tmp_path: Path) -> None:
    """``verify`` asks the app, not only the index: with ``PLAYBOOK_VERIFY_PATH`` on a
    path the decisions exempt (``/health``), the banned address is served there, so the
    ban (in force in the index) is reported not verified; on ``/`` it is verified."""
    async for application in _app(tmp_path, playbook_verify_path="/health"):
        async with _client(application, ADMIN_IP) as admin:
            session = await admin_session(admin)
            incident_id = await _incident(admin, [ATTACKER])
            run = await admin.post(
                f"{BASE}/{incident_id}/playbooks/sql_injection_response", headers=session
            )
            ban = run.json()["steps"][0]
            assert ban["status"] == "done" and ban["verified"] is False
            # A route decision is checked in the index (a request there is not refused).
            assert run.json()["steps"][1]["verified"] is True
