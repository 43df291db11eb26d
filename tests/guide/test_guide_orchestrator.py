"""The framework summary's orchestration example, verbatim (only the import changed),
from sync code; the same facade over an app's stack, awaited in async code."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security import (
    AdvancedSecurityOrchestrator,
    ConfigurationError,
    SecuritySettings,
    add_security_endpoints,
    setup_security_middleware,
)

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
KEY = "guide-admin-key-0123456789abcdef"


@pytest.fixture
def orchestrator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the guide assumes: a master key (nothing else)."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)


def test_basic_security_orchestration_example(orchestrator_env: None) -> None:
    """As written: the unknown user is refused (not an exception), the SQL statement in
    a parameter is a blocked sqli threat (the inspection layer would answer 403), and
    the dashboard counts both, with the monitor's and the components' state."""
    # -- verbatim from the summary ("Basic Security Orchestration") -------------------
    # Initialize the security orchestrator
    orchestrator = AdvancedSecurityOrchestrator()

    # Authenticate user with zero-trust
    auth_result = orchestrator.authenticate_user(
        username="user@example.com",
        password="secure_password",
        source_ip="192.168.1.100",
        user_agent="Mozilla/5.0",
    )

    # Monitor incoming requests for threats
    request_data = {
        "method": "POST",
        "path": "/api/data",
        "headers": {"user-agent": "legitimate browser"},
        "params": {"query": "SELECT * FROM users"},
        "source_ip": "192.168.1.100",
    }

    threats = orchestrator.monitor_request(request_data)

    # Get comprehensive security dashboard
    dashboard = orchestrator.get_comprehensive_security_dashboard()
    # -- end -------------------------------------------------------------------------------
    try:
        assert auth_result["authenticated"] is False
        assert auth_result["reason"] == "invalid_credentials"
        [threat] = threats
        assert threat["type"] == "sqli" and threat["blocked"] is True
        assert threat["fields"] == ["query.query"]
        assert "sqli-select-from" in threat["rules"]
        assert dashboard["threat_detection"]["requests_screened"] == 1
        assert dashboard["threat_detection"]["threats_by_type"] == {"sqli": 1}
        assert dashboard["authentication"]["failed"] == 1
        assert dashboard["authentication"]["failures_by_reason"] == {"invalid_credentials": 1}
        assert dashboard["status"] == "up"
        assert dashboard["components"]["monitor"]["running"] is True
        assert dashboard["components"]["shared_store"] == {"reachable": True}
        # The monitor got the request's report, as from the middleware: an alert.
        later = orchestrator.get_comprehensive_security_dashboard()
        assert later["monitoring"]["recent_metrics"]["injection_attempts"] == 1
        alerts = orchestrator.monitor.get_active_alerts(threat_level="HIGH")
        assert [a.alert_type for a in alerts] == ["injection_attack"]
        assert alerts[0].source_ip == "192.168.1.100"
        # A clean request is no threat.
        assert orchestrator.monitor_request({"method": "GET", "path": "/api/data"}) == []
    finally:
        orchestrator.close()


def test_a_known_user_signs_in(orchestrator_env: None) -> None:
    """With the user signed up, the same call signs in: tokens and the risk assessment."""
    with AdvancedSecurityOrchestrator() as orchestrator:
        created = orchestrator.create_user("user@example.com", "secure_password")
        assert created["created"] is True, created
        result = orchestrator.authenticate_user(
            username="user@example.com",
            password="secure_password",
            source_ip="192.168.1.100",
            user_agent="Mozilla/5.0",
        )
        assert result["authenticated"] is True and result["user_id"] == created["user_id"]
        assert result["access_token"] and result["token_type"] == "bearer"
        assert result["risk"]["level"] in ("low", "medium")
        wrong = orchestrator.authenticate_user(username="user@example.com", password="nope-nope")
        assert wrong == {
            "authenticated": False,
            "reason": "invalid_credentials",
            "requires_mfa": False,
        }


def test_without_a_master_key_the_message_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside development mode and without PYNOMALY_MASTER_KEY: a clear error."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="PYNOMALY_MASTER_KEY"):
        AdvancedSecurityOrchestrator()


@pytest.mark.anyio
async def test_the_facade_shares_an_apps_stack(tmp_path: Path) -> None:
    """From an app's stack: awaited sign-in through the same lockout, screening that
    reaches the app's /alerts, and a dashboard with the app's audit trail."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        sqli_edge_mode="block",  # this test is about the edge blocking SQL injection
    )
    app = FastAPI()
    stack = setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)
    orchestrator = AdvancedSecurityOrchestrator.from_stack(stack)
    assert orchestrator.monitor is stack.security_monitor
    assert orchestrator.inspector is stack.inspector
    assert orchestrator.authenticator.lockouts is stack.lockouts
    async with app.router.lifespan_context(app):
        pending = orchestrator.authenticate_user("alice", "wonderland-2024")
        with pytest.raises(RuntimeError, match="await"):
            pending["authenticated"]  # unawaited inside the loop: nothing was done
        assert (await orchestrator.create_user("alice", "wonderland-2024"))["created"]
        signed_in = await orchestrator.authenticate_user("alice", "wonderland-2024", "203.0.113.5")
        assert signed_in["authenticated"] is True
        threats = orchestrator.monitor_request(
            {"method": "GET", "path": "/search", "params": {"q": "<script>alert(1)</script>"}}
        )
        assert [t["type"] for t in threats] == ["xss"]
        await stack.security_monitor.flush()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            alerts = (await c.get("/api/security/alerts", headers={"X-API-Key": KEY})).json()[
                "alerts"
            ]
        assert [a["alert_type"] for a in alerts] == ["injection_attack"]
        now = orchestrator.get_comprehensive_security_dashboard()  # sync: the snapshot
        assert now["status"] == "unknown" and now["monitoring"]["active_alerts_count"] == 1
        dashboard = await orchestrator.get_comprehensive_security_dashboard()
        assert dashboard["status"] == "up"
        assert dashboard["components"]["audit"]["running"] is True
        assert dashboard["authentication"] == {
            "attempts": 1,
            "succeeded": 1,
            "failed": 0,
            "failures_by_reason": {},
            "lockout_by": settings.lockout_by,
        }
