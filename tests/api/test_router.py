"""The /api/security router: authentication, endpoints, OpenAPI."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException, Request

from pynomaly_security import ConfigurationError, create_security_router
from pynomaly_security.monitor import SecurityAlert, SecurityMonitor, ThreatLevel, UserTracker
from pynomaly_security.monitor.activity import ActivityRecord

KEY = "k" * 32


def _app(monitor: SecurityMonitor, tracker: UserTracker | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(
        create_security_router(security_monitor=monitor, user_tracker=tracker, admin_api_key=KEY)
    )
    return app


@pytest.mark.anyio
async def test_every_endpoint_needs_the_admin_key(make_client) -> None:  # type: ignore[no-untyped-def]
    """Without the key, or with a wrong one, every endpoint answers 401 with WWW-Authenticate."""
    app = _app(SecurityMonitor())
    async with make_client(app) as client:
        for method, path in [
            ("GET", "/api/security/status"),
            ("GET", "/api/security/alerts"),
            ("POST", "/api/security/alerts/x/acknowledge"),
            ("GET", "/api/security/users/alice/activity"),
        ]:
            for headers in ({}, {"X-API-Key": "wrong" * 8}, {"Authorization": "Bearer nope"}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        assert (
            await client.get("/api/security/status", headers={"X-API-Key": KEY})
        ).status_code == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert (await client.get("/api/security/status", headers=bearer)).status_code == 200


def test_router_refuses_to_mount_without_auth() -> None:
    """No key and no auth dependency: a ConfigurationError that says what to do."""
    with pytest.raises(ConfigurationError, match="ADMIN_API_KEY"):
        create_security_router(security_monitor=SecurityMonitor())
    with pytest.raises(ConfigurationError, match="at least 16"):
        create_security_router(security_monitor=SecurityMonitor(), admin_api_key="short")


@pytest.mark.anyio
async def test_explicit_auth_dependency_replaces_the_key(make_client) -> None:  # type: ignore[no-untyped-def]
    """An app's own dependency can guard the router instead of the admin key."""

    def staff_only(request: Request) -> None:
        if request.headers.get("x-role") != "staff":
            raise HTTPException(status_code=403)

    app = FastAPI()
    app.include_router(
        create_security_router(security_monitor=SecurityMonitor(), auth_dependency=staff_only)
    )
    async with make_client(app) as client:
        assert (await client.get("/api/security/status")).status_code == 403
        assert (
            await client.get("/api/security/status", headers={"x-role": "staff"})
        ).status_code == 200


@pytest.mark.anyio
async def test_alerts_filter_and_acknowledge(make_client) -> None:  # type: ignore[no-untyped-def]
    """Alerts list by level; acknowledge works once and 404s for unknown ids."""
    monitor = SecurityMonitor(detectors=[])
    alert = SecurityAlert("brute_force", ThreatLevel.HIGH, "x", source_ip="1.2.3.4")
    await monitor.raise_alert(alert)
    await monitor.raise_alert(SecurityAlert("other", ThreatLevel.LOW, "y"))
    h = {"X-API-Key": KEY}
    async with make_client(_app(monitor)) as client:
        high = (await client.get("/api/security/alerts?threat_level=high", headers=h)).json()
        assert high["count"] == 1 and high["alerts"][0]["alert_id"] == alert.alert_id
        assert (
            await client.get("/api/security/alerts?threat_level=bogus", headers=h)
        ).status_code == 422
        ack = await client.post(f"/api/security/alerts/{alert.alert_id}/acknowledge", headers=h)
        assert ack.status_code == 200 and ack.json()["acknowledged"] is True
        assert (
            await client.post("/api/security/alerts/unknown/acknowledge", headers=h)
        ).status_code == 404
        status = (await client.get("/api/security/status", headers=h)).json()
        assert status["active_alerts_count"] == 1
        assert set(status["recent_metrics"]) >= {
            "failed_logins",
            "successful_logins",
            "injection_attempts",
        }


@pytest.mark.anyio
async def test_user_activity(make_client) -> None:  # type: ignore[no-untyped-def]
    """User activity lists recent actions within `hours`, validated."""
    tracker = UserTracker(clock=lambda: 10_000.0)
    tracker.record("alice", ActivityRecord(9_000.0, "GET", "/items", 200, "1.2.3.4", "r1", 1.0))
    tracker.record("alice", ActivityRecord(1.0, "GET", "/old", 200, "1.2.3.4", "r0", 1.0))
    h = {"X-API-Key": KEY}
    async with make_client(_app(SecurityMonitor(), tracker)) as client:
        data = (await client.get("/api/security/users/alice/activity?hours=1", headers=h)).json()
        assert data["count"] == 1 and data["activities"][0]["path"] == "/items"
        assert (
            await client.get("/api/security/users/alice/activity?hours=-1", headers=h)
        ).status_code == 422


def test_openapi_has_response_models() -> None:
    """The router's response models appear in the OpenAPI schema, with the security scheme."""
    schema = _app(SecurityMonitor()).openapi()
    names = set(schema["components"]["schemas"])
    assert {"StatusOut", "AlertsOut", "AlertOut", "UserActivityOut"} <= names
    assert "AdminAPIKey" in schema["components"]["securitySchemes"]
