"""The guide's REST endpoints as it writes them: ``threat_level=HIGH``, ``recent_alerts``
keyed ``"HIGH"``, and ``GET /api/security/health`` (up/down for anyone, the
detail for the admin key)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from pynomaly_security import (
    SecurityAlert,
    SecuritySettings,
    ThreatLevel,
    add_security_endpoints,
    setup_security_middleware,
)

KEY = "guide-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


def _app(tmp_path: Path, **overrides: object) -> FastAPI:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        **overrides,
    )
    app = FastAPI()
    setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)

    @app.get("/wp-admin")
    async def wp_admin(request: Request) -> dict[str, str]:
        # The app's authentication names the user; the stack reports the request.
        request.state.pynomaly_security.user_id = "mallory"
        return {"ok": "yes"}

    return app


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(tmp_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@pytest.mark.anyio
async def test_threat_level_in_any_case_and_guide_status_keys(client: httpx.AsyncClient) -> None:
    """``?threat_level=HIGH`` (the guide's spelling) answers 200 like ``high``; /status
    counts active alerts under the guide's keys; an unknown level is still a 422."""
    monitor = client.app.state.pynomaly_security.security_monitor  # type: ignore[attr-defined]
    await monitor.raise_alert(SecurityAlert("a", ThreatLevel.HIGH, "one"))
    await monitor.raise_alert(SecurityAlert("b", ThreatLevel.HIGH, "two"))
    await monitor.raise_alert(SecurityAlert("c", ThreatLevel.MEDIUM, "three"))
    for spelling in ("HIGH", "high", "High"):
        response = await client.get(
            "/api/security/alerts", params={"threat_level": spelling}, headers=ADMIN
        )
        assert response.status_code == 200, spelling
        assert response.json()["count"] == 2
    assert (
        await client.get("/api/security/alerts", params={"threat_level": "SEVERE"}, headers=ADMIN)
    ).status_code == 422
    status = (await client.get("/api/security/status", headers=ADMIN)).json()
    assert status["active_alerts_count"] == 3
    assert status["recent_alerts"] == {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 0}


@pytest.mark.anyio
async def test_health_without_the_key_is_only_up_or_down(client: httpx.AsyncClient) -> None:
    """A probe without the key (or with a wrong one) learns only that the stack is up."""
    for headers in ({}, {"X-API-Key": "wrong" * 8}):
        response = await client.get("/api/security/health", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"status": "up"}
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.anyio
async def test_health_detail_for_the_admin(client: httpx.AsyncClient) -> None:
    """With the key: each component's state, the backends, the audit queue, and the
    last verification of the trail once one ran."""
    detail = (await client.get("/api/security/health", headers=ADMIN)).json()
    assert detail["status"] == "up"
    parts = detail["components"]
    assert parts["monitor"]["enabled"] and parts["monitor"]["running"]
    assert "injection" in parts["monitor"]["detectors"]
    assert parts["shared_store"] == {"reachable": True}
    assert parts["audit"]["running"] and parts["audit"]["last_verification"] is None
    assert isinstance(parts["audit"]["queue_depth"], int)
    assert any(url.startswith("sqlite") for url in detail["backends"])
    assert all(detail["backends"].values())
    app = client.app  # type: ignore[attr-defined]
    await app.state.pynomaly_security.audit_logger.flush()  # the requests above, committed
    verified = (await client.get("/api/security/audit/verify", headers=ADMIN)).json()
    assert verified["ok"] is True and verified["count"] >= 1
    # The probe result is shared for a second; a fresh router shows the new state now.
    from pynomaly_security.health import check_health

    last = (await check_health(app.state.pynomaly_security))["components"]["audit"]
    assert last["last_verification"]["ok"] is True
    assert last["last_verification"]["records"] == verified["count"]


@pytest.mark.anyio
async def test_health_is_down_when_the_shared_store_is_unreachable(
    tmp_path: Path, make_client
) -> None:  # type: ignore[no-untyped-def]
    """Redis configured but not answering: 503 ``{"status": "down"}`` for anyone, and the
    admin sees which part failed (never a 500, never a hang)."""
    app = _app(tmp_path, redis_url="redis://127.0.0.1:1/0")
    async with make_client(app) as client:
        response = await client.get("/api/security/health")
        assert response.status_code == 503 and response.json() == {"status": "down"}
        detail = await client.get("/api/security/health", headers=ADMIN)
    assert detail.status_code == 503
    assert detail.json()["components"]["shared_store"] == {"reachable": False}


@pytest.mark.anyio
async def test_guide_detector_and_health_check_in_the_assembled_stack(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The guide's custom detector registered on the app's monitor sees the app's
    requests (a signed-in user's: the stack reports those, logins and attacks); its
    alert, with the guide's fields, is listed by the admin API; the guide's "Health
    Checks" lines run as written on the same monitor."""
    from tests.guide.test_guide_monitor import CustomThreatDetector

    security_monitor = client.app.state.pynomaly_security.security_monitor  # type: ignore[attr-defined]
    security_monitor.register_detector(CustomThreatDetector())
    assert (await client.get("/wp-admin")).status_code == 200
    await security_monitor.flush()
    alerts = (
        await client.get("/api/security/alerts", params={"threat_level": "HIGH"}, headers=ADMIN)
    ).json()["alerts"]
    [alert] = [a for a in alerts if a["alert_type"] == "custom_threat"]
    assert alert["title"] == "Custom Threat Detected"
    assert alert["indicators"] == {"custom_indicator": "value"}
    assert alert["recommended_actions"] == ["Take action A", "Take action B"]

    # -- verbatim from the guide ("Health Checks") --------------------------------------
    # Check if security services are running
    status = security_monitor.get_security_summary()
    print(f"Security monitoring: {'enabled' if status['monitoring_enabled'] else 'disabled'}")
    # -- end ------------------------------------------------------------------------------
    assert "Security monitoring: enabled" in capsys.readouterr().out
    assert status["recent_alerts"]["HIGH"] >= 1


@pytest.mark.anyio
async def test_sync_endpoint_reads_and_acknowledges_through_the_apps_loop(
    tmp_path: Path,
) -> None:
    """A sync FastAPI endpoint (run in the thread pool, no loop of its own) calls the
    guide's sync methods: they run on the app's loop and answer the store's truth."""
    app = _app(tmp_path)
    monitor = app.state.pynomaly_security.security_monitor

    @app.post("/ack/{alert_id}")
    def ack(alert_id: str) -> dict[str, object]:
        done = monitor.acknowledge_alert(alert_id)
        summary = monitor.get_security_summary()
        return {"done": bool(done), "active": summary["active_alerts_count"]}

    async with app.router.lifespan_context(app):
        await monitor.raise_alert(SecurityAlert("a", ThreatLevel.HIGH, "x", alert_id="a-1"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.post("/ack/a-1")).json() == {"done": True, "active": 0}
            assert (await c.post("/ack/unknown")).json() == {"done": False, "active": 0}
        stored = await monitor.get_alert("a-1")
        assert stored is not None and stored.acknowledged
