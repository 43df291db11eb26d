"""Behavioural scores where the rest of the stack decides: the orchestrator's
monitor_request and dashboard, the access detector for known users, sign-in risk."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.anomaly.corpus import request_features
from pynomaly_security.anomaly.model import AnomalyModel, save
from pynomaly_security.anomaly.principals import PrincipalWindows
from pynomaly_security.anomaly.profile import Profile
from pynomaly_security.auth.risk import RiskEngine
from pynomaly_security.monitor.detectors import AnomalousAccessDetector
from pynomaly_security.monitor.events import EventKind, SecurityEvent
from pynomaly_security.orchestrator import AdvancedSecurityOrchestrator
from pynomaly_security.storage.memory import MemoryStore

from ._traffic import normal

SALT = b"integration-salt"


def _model_dir(tmp_path: Path) -> Path:
    profile = Profile(min_requests=20)
    for record in normal(400):
        profile.learn(request_features(record, salt=SALT))
    save(AnomalyModel(profile, None, SALT), tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.anyio
async def test_monitor_request_and_dashboard_show_the_score(tmp_path: Path) -> None:
    """monitor_request reports a behavioural threat with score and explanation for a
    request unlike its endpoint's traffic, nothing for an ordinary one; the dashboard
    shows the engine's state."""
    app = FastAPI()
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        development_mode=True,
        enable_audit_logging=False,
        anomaly_mode="prevent",
        anomaly_model_path=str(_model_dir(tmp_path)),
    )
    stack = setup_security_middleware(app, settings=settings)
    async with app.router.lifespan_context(app):
        orchestrator = AdvancedSecurityOrchestrator.from_stack(stack)
        ordinary = {"method": "GET", "path": "/items", "params": {"page": "3", "sort": "name"}}
        assert orchestrator.monitor_request(ordinary) == []
        odd = {"method": "GET", "path": "/items", "params": {"page": "x" * 80, "debug": "1"}}
        (threat,) = orchestrator.monitor_request(odd)
        assert threat["type"] == "behavioural_anomaly" and threat["score"] <= 10
        assert threat["blocked"] is True
        assert {e["where"] for e in threat["explanation"]} >= {"debug", "page"}
        dashboard = await orchestrator.get_comprehensive_security_dashboard()
        assert dashboard["anomaly"]["mode"] == "prevent"
        assert dashboard["threat_detection"]["threats_by_type"] == {"behavioural_anomaly": 1}


@pytest.mark.anyio
async def test_access_detector_alerts_on_a_known_users_unusual_behaviour() -> None:
    """A known user whose recent requests scored low raises one unusual_behaviour
    alert carrying the score and its explanation; an unknown user raises none."""
    now = 1_800_000_000.0
    windows = PrincipalWindows()
    detector = AnomalousAccessDetector(MemoryStore(), min_history=3)
    detector.behaviour = lambda user: windows.behaviour(user, now)

    def event(user: str) -> SecurityEvent:
        return SecurityEvent(EventKind.REQUEST, "10.0.0.1", user, "/items", "GET", timestamp=now)

    for _ in range(4):
        assert await detector.analyze(event("alice")) is None
    windows.observe(
        "alice", endpoint="/items", status=200, ip="10.0.0.1", at=now, score=8,
        explanation=[{"feature": "unknown parameter", "where": "debug", "surprisal": 2.6}],
    )  # fmt: skip
    alert = await detector.analyze(event("alice"))
    assert alert is not None and alert.details["reason"] == "unusual_behaviour"
    assert alert.details["behaviour_score"] == 8
    assert alert.details["behaviour"]["explanation"][0]["where"] == "debug"
    assert await detector.analyze(event("alice")) is None  # once per hour
    windows.observe("mallory", endpoint="/items", status=200, ip="10.0.0.9", at=now, score=3)
    assert await detector.analyze(event("mallory")) is None  # not known yet


@pytest.mark.anyio
async def test_sign_in_risk_counts_unusual_behaviour() -> None:
    """The zero-trust risk score adds unusual_behaviour when the user's recent
    requests scored at or below the alert score."""
    windows = PrincipalWindows()
    risk = RiskEngine(MemoryStore(), clock=lambda: 1_800_000_000.0)
    risk.behaviour = lambda user: windows.behaviour(user, 1_800_000_000.0)
    calm = await risk.assess("u1", "10.0.0.1", "fp")
    assert "unusual_behaviour" not in calm.reasons
    windows.observe("u1", endpoint="/x", status=200, ip="10.0.0.1", at=1_800_000_000.0, score=4)
    tense = await risk.assess("u1", "10.0.0.1", "fp")
    assert "unusual_behaviour" in tense.reasons and tense.score == calm.score + 20
