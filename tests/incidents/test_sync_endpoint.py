"""A sync endpoint (FastAPI runs it in a thread) opens an incident through the stack's
automation with the guide's sync call; it runs on the app's loop, where the state's
connections live (Redis here), and the admin API sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from pynomaly_security import IncidentSeverity, add_security_endpoints, setup_security_middleware
from pynomaly_security.settings import SecuritySettings

KEY = "test-admin-key-0123456789abcdef-incmodel"


@pytest.fixture
async def client(redis_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        redis_url=redis_db,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)

    @app.post("/report")
    def report(request: Request) -> dict[str, str]:
        incidents = request.app.state.pynomaly_security.incidents
        incident_id = incidents.create_incident(
            title="Reported by a user", severity=IncidentSeverity.MEDIUM, affected_assets=["app"]
        )
        return {"incident_id": incident_id}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.mark.anyio
async def test_a_sync_endpoint_opens_an_incident(client: httpx.AsyncClient) -> None:
    """The sync call returns the id; the incident and its timeline are the app's."""
    answer = await client.post("/report")
    assert answer.status_code == 200, answer.text
    incident_id = answer.json()["incident_id"]
    headers = {"X-API-Key": KEY}
    found = await client.get(f"/api/security/incidents/{incident_id}", headers=headers)
    assert found.status_code == 200 and found.json()["severity"] == "medium"
    timeline = await client.get(f"/api/security/incidents/{incident_id}/timeline", headers=headers)
    assert timeline.json()["verified"] is True
