"""The README's demo walk-through (an injection, a brute force) on the example app, and
what the dashboard's data then says: the block by route and family, the failed logins,
the lockout, and both alerts among the latest, each with its acknowledge route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests._example import running_example

KEY = "demo-dashboard-admin-key-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_example(tmp_path, KEY) as application:
        yield application


@pytest.mark.anyio
async def test_the_walkthrough_shows_on_the_dashboard(app: FastAPI) -> None:
    admin = {"X-API-Key": KEY}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        injection = "1' UNION SELECT password FROM users--"
        assert (await client.get("/search", params={"q": injection})).status_code == 403
        for _ in range(5):
            answer = await client.post("/login", json={"username": "alice", "password": "guess"})
            assert answer.status_code == 401
        locked = await client.post(
            "/login", json={"username": "alice", "password": "wonderland-2024"}
        )
        assert locked.status_code == 429
        await app.state.pynomaly_security.security_monitor.flush()

        summary = (await client.get("/api/security/metrics/summary", headers=admin)).json()
        posture = summary["posture"]
        assert posture["blocked_requests"] >= 2  # the injection and the locked sign-in
        assert posture["failed_logins"] >= 5
        assert posture["lockouts_active"] == 1
        assert {"route": "/search", "count": 1} in summary["top_blocked_routes"]
        # Refused before the router ran, still under its template (the auth router's).
        assert {"route": "/login", "count": 1} in summary["top_blocked_routes"]
        assert "sqli" in {row["family"] for row in summary["top_families"]}
        assert summary["series"]["blocked"][-1] >= 2
        alerts = (await client.get("/api/security/alerts?limit=20", headers=admin)).json()
        types = {a["alert_type"] for a in alerts["alerts"]}
        assert {"brute_force", "injection_attack"} <= types
        page = await client.get("/api/security/dashboard")
        assert page.status_code == 200 and "Security dashboard" in page.text


def _gauge(text: str, name: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


@pytest.mark.anyio
async def test_sessions_and_refresh_tokens_active(app: FastAPI) -> None:
    """The example app's authenticator: two sign-ins, one refresh (a rotation, still one
    token per session), one logout: one session and one refresh token live."""
    admin = {"X-API-Key": KEY}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:

        async def gauges() -> tuple[float | None, float | None]:
            text = (await client.get("/metrics", headers=admin)).text
            return (
                _gauge(text, "pynomaly_security_sessions_active"),
                _gauge(text, "pynomaly_security_refresh_tokens_active"),
            )

        assert await gauges() == (0, 0)
        credentials = {"username": "alice", "password": "wonderland-2024"}
        first = (await client.post("/login", json=credentials)).json()
        second = (await client.post("/login", json=credentials)).json()
        assert await gauges() == (2, 2)
        rotated = await client.post("/refresh", json={"refresh_token": first["refresh_token"]})
        assert rotated.status_code == 200
        assert await gauges() == (2, 2)
        bearer = {"Authorization": f"Bearer {second['access_token']}"}
        assert (await client.post("/logout", headers=bearer)).status_code == 204
        assert await gauges() == (1, 1)
