"""Incidents through the admin API of the example app, in process: open, triage,
contain, close; the timeline read back from the audit trail verifies, and a
tampered audit row makes it not verify; bad input, unknown ids and refused
transitions answer 4xx with a reason (issue 16, items 2 and 6)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import DEMO_USERS, create_app
from pynomaly_security.settings import SecuritySettings

KEY = "test-admin-key-0123456789abcdef-incidents"
ADMIN = {"X-API-Key": KEY}
BASE = "/api/security/incidents"


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
async def app(audit_db: Path) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{audit_db}",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def admin_session(client: httpx.AsyncClient) -> dict[str, str]:
    """The admin key plus alice's re-authenticated session (closing needs both)."""
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = await client.post("/login", json=creds)
    assert login.status_code == 200, login.text
    headers = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    again = await client.post("/reauth", json={"password": creds["password"]}, headers=headers)
    assert again.status_code == 200, again.text
    return headers


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"title": "SQL Injection Attack", "severity": "HIGH", **body}
    answer = await client.post(BASE, json=payload, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def patch(
    client: httpx.AsyncClient, incident_id: str, headers: dict[str, str] = ADMIN, **body: Any
) -> httpx.Response:
    return await client.patch(f"{BASE}/{incident_id}", json=body, headers=headers)


@pytest.mark.anyio
async def test_an_incident_opens_is_triaged_contained_and_closed(client: httpx.AsyncClient) -> None:
    """The whole lifecycle through the API: each step lands, the metrics follow the
    status times, and the timeline shows every step and verifies in the audit trail."""
    assert (await client.get(BASE)).status_code == 401
    opened = await create(
        client,
        description="Malicious SQL injection detected",
        affected_assets=["web_server", "database"],
        observables={"ips": ["203.0.113.5"], "routes": ["/search"]},
    )
    incident_id = opened["incident_id"]
    assert opened["status"] == "new" and opened["severity"] == "high"
    assert opened["affected_assets"] == ["web_server", "database"]
    assert opened["metrics"]["time_to_contain"] is None

    triaged = await patch(client, incident_id, status="TRIAGED", assignee="alice", note="looking")
    assert triaged.status_code == 200, triaged.text
    assert triaged.json()["assignee"] == "alice" and triaged.json()["notes"][0]["text"] == "looking"
    linked = await patch(client, incident_id, alert_id="alert-42")
    assert linked.status_code == 200 and linked.json()["alert_ids"] == ["alert-42"]
    contained = await patch(client, incident_id, status="contained", reason="IP banned")
    assert contained.status_code == 200, contained.text
    assert contained.json()["metrics"]["time_to_contain"] >= 0

    # Closing is sensitive: the admin key alone is not enough.
    refused = await patch(client, incident_id, status="closed")
    assert refused.status_code == 401, refused.text
    assert "re-authenticated" in refused.json()["detail"]
    closed = await patch(client, incident_id, await admin_session(client), status="closed")
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed" and body["metrics"]["time_to_resolve"] >= 0
    assert set(body["status_times"]) == {"new", "triaged", "contained", "closed"}

    timeline = (await client.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
    actions = [(e["action"], e["details"].get("to")) for e in timeline["entries"]]
    assert actions == [
        ("created", None),
        ("status", "triaged"),
        ("assign", "alice"),
        ("note", None),
        ("alert_linked", None),
        ("status", "contained"),
        ("status", "closed"),
    ]
    assert timeline["verified"] is True, timeline["verification"]
    assert all(e["intact"] for e in timeline["entries"])
    assert [e["seq"] for e in timeline["entries"]] == body["timeline"]
    # The key alone acts as "admin"; the close names the re-authenticated user's id.
    assert {e["actor"] for e in timeline["entries"][:-1]} == {"admin"}
    assert timeline["entries"][-1]["actor"] not in (None, "admin")
    assert timeline["entries"][0]["event_type"] == "incident_created"
    # Observables stay in the incident: the trail only counts them.
    assert timeline["entries"][0]["details"]["observables"]["ips"] == 1
    assert "203.0.113.5" not in str(timeline)

    listed = (await client.get(BASE, params={"status": "closed"}, headers=ADMIN)).json()
    assert [i["incident_id"] for i in listed["incidents"]] == [incident_id]
    assert (await client.get(BASE, params={"status": "new"}, headers=ADMIN)).json()["count"] == 0


@pytest.mark.anyio
async def test_a_tampered_audit_row_makes_the_timeline_fail_verification(
    client: httpx.AsyncClient, audit_db: Path
) -> None:
    """Editing one of the incident's audit records in the database shows: the
    timeline no longer verifies and names the entry."""
    incident_id = (await create(client))["incident_id"]
    assert (await patch(client, incident_id, status="triaged")).status_code == 200
    timeline = (await client.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
    assert timeline["verified"] is True
    target = timeline["entries"][1]["seq"]
    with sqlite3.connect(audit_db) as conn:
        conn.execute("UPDATE audit_records SET level = 'debug' WHERE seq = ?", (target,))
    timeline = (await client.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
    assert timeline["verified"] is False
    assert timeline["verification"]["first_bad_seq"] == target
    assert [e["intact"] for e in timeline["entries"]] == [True, False]


@pytest.mark.anyio
async def test_bad_input_unknown_ids_and_refused_transitions(client: httpx.AsyncClient) -> None:
    """4xx with a reason: a transition the lifecycle refuses names both states (409);
    unknown ids are 404; bad bodies and filters 4xx."""
    incident_id = (await create(client))["incident_id"]
    wrong = await patch(client, incident_id, status="recovered")
    assert wrong.status_code == 409
    assert "'new'" in wrong.json()["detail"]["detail"]
    assert wrong.json()["detail"]["from"] == "new" and wrong.json()["detail"]["to"] == "recovered"
    for unknown in ("inc-0123456789abcdef", "nope", "x" * 60):
        assert (await client.get(f"{BASE}/{unknown}", headers=ADMIN)).status_code == 404
        assert (await patch(client, unknown, note="hi")).status_code == 404
        timeline = await client.get(f"{BASE}/{unknown}/timeline", headers=ADMIN)
        assert timeline.status_code == 404
    assert (await patch(client, incident_id)).status_code == 400
    assert (await patch(client, incident_id, status="solved")).status_code == 422
    bad_kind = await client.post(
        BASE, json={"title": "x", "observables": {"macs": ["aa"]}}, headers=ADMIN
    )
    assert bad_kind.status_code == 422 and "macs" in bad_kind.text
    token = await client.post(
        BASE,
        json={"title": "x", "observables": {"sessions": ["eyJhbGciOi.eyJzdWIi.c2ln"]}},
        headers=ADMIN,
    )
    assert token.status_code == 422 and "never a token" in token.text
    assert (await client.post(BASE, json={"title": ""}, headers=ADMIN)).status_code == 422
    assert (
        await client.post(BASE, json={"title": "x", "severity": "huge"}, headers=ADMIN)
    ).status_code == 422
    assert (await client.get(BASE, params={"limit": 0}, headers=ADMIN)).status_code == 422
    assert (await client.get(BASE, params={"severity": "nope"}, headers=ADMIN)).status_code == 422


@pytest.mark.anyio
async def test_two_concurrent_creates_of_one_dedup_key_give_one_incident(
    client: httpx.AsyncClient,
) -> None:
    """Two creates of one dedup key at once open one incident, counted twice with both
    alerts linked; once closed, the key opens a new incident."""
    body = {"title": "Brute force from 203.0.113.7", "dedup_key": "brute_force:203.0.113.7"}
    first, second = await asyncio.gather(
        client.post(BASE, json={**body, "alert_ids": ["a1"]}, headers=ADMIN),
        client.post(BASE, json={**body, "alert_ids": ["a2"]}, headers=ADMIN),
    )
    assert first.status_code == second.status_code == 201
    incident_id = first.json()["incident_id"]
    assert second.json()["incident_id"] == incident_id
    listed = (await client.get(BASE, headers=ADMIN)).json()
    assert listed["count"] == 1
    incident = listed["incidents"][0]
    assert incident["occurrences"] == 2 and sorted(incident["alert_ids"]) == ["a1", "a2"]
    assert (await patch(client, incident_id, status="false_positive")).status_code == 401
    done = await patch(client, incident_id, await admin_session(client), status="false_positive")
    assert done.status_code == 200, done.text
    again = await client.post(BASE, json=body, headers=ADMIN)
    assert again.json()["incident_id"] != incident_id and again.json()["dedup_gen"] == 2


@pytest.mark.anyio
async def test_pagination_newest_first(client: httpx.AsyncClient) -> None:
    """limit and offset page through incidents newest first; severity filters."""
    ids = [
        (await create(client, title=f"i{n}", severity="low" if n % 2 else "critical"))[
            "incident_id"
        ]
        for n in range(5)
    ]
    page = (await client.get(BASE, params={"limit": 2, "offset": 1}, headers=ADMIN)).json()
    assert [i["incident_id"] for i in page["incidents"]] == [ids[3], ids[2]]
    low = (await client.get(BASE, params={"severity": "LOW"}, headers=ADMIN)).json()
    assert [i["incident_id"] for i in low["incidents"]] == [ids[3], ids[1]]


@pytest.mark.anyio
async def test_dashboard_and_health_show_incidents(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The orchestrator's dashboard counts the app's incidents by status (open ones
    apart) and the health detail lists the incident component with its timeline."""
    from pynomaly_security import AdvancedSecurityOrchestrator

    incident_id = (await create(client))["incident_id"]
    await create(client, title="other")
    assert (await patch(client, incident_id, status="triaged")).status_code == 200
    orchestrator = AdvancedSecurityOrchestrator.from_stack(app.state.pynomaly_security)
    assert orchestrator.incidents is app.state.pynomaly_security.incidents
    dashboard = await orchestrator.get_comprehensive_security_dashboard()
    assert dashboard["incidents"] == {"by_status": {"new": 1, "triaged": 1}, "open": 2}
    health = (await client.get("/api/security/health", headers=ADMIN)).json()
    assert health["components"]["incidents"] == {"enabled": True, "timeline": True}
