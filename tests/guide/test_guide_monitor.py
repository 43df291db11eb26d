"""The integration guide's monitoring examples, verbatim (only the import changed):
sync getters inside async code, the custom detector, alert handlers; the same
methods awaited; and, on Redis, a second worker's sync getters catching up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest

from pynomaly_security import (
    SecurityAlert,
    SecurityEvent,
    SecurityMonitor,
    ThreatDetector,
    ThreatLevel,
)
from pynomaly_security._dual import AwaitableBool, Deferred
from pynomaly_security.monitor import EventKind
from pynomaly_security.storage import Store, create_store

Optional = Any  # the guide's annotation; kept verbatim below

notifications: list[SecurityAlert] = []


def send_security_notification(alert: SecurityAlert) -> None:
    """The outside world the guide's handler pages (a list here)."""
    notifications.append(alert)


@pytest.mark.anyio
async def test_security_monitoring_example() -> None:
    """The guide's block runs as written inside async code: the summary is a dict,
    the alert list a list, acknowledging an unknown id is false, and the handler
    pages on a CRITICAL alert and not on a HIGH one."""
    notifications.clear()
    # -- verbatim from the guide ("Security Monitoring") --------------------------
    monitor = SecurityMonitor()
    await monitor.start_monitoring()

    # Get security status
    summary = monitor.get_security_summary()
    print(f"Active alerts: {summary['active_alerts_count']}")

    # Get active alerts
    high_threat_alerts = monitor.get_active_alerts(threat_level=ThreatLevel.HIGH)

    # Acknowledge alert
    monitor.acknowledge_alert("alert_id_123")

    # Custom alert handler
    def handle_critical_alert(alert):  # type: ignore[no-untyped-def]
        if alert.threat_level == ThreatLevel.CRITICAL:
            # Send email notification, page security team, etc.
            send_security_notification(alert)

    monitor.register_alert_handler(handle_critical_alert)
    # -- end of the guide's block ----------------------------------------------------
    try:
        assert summary["active_alerts_count"] == 0 and summary["monitoring_enabled"] is True
        assert high_threat_alerts == []
        await monitor.raise_alert(
            SecurityAlert("probe", ThreatLevel.HIGH, "high", alert_id="alert_id_123")
        )
        await monitor.raise_alert(SecurityAlert("worm", ThreatLevel.CRITICAL, "critical"))
        assert [a.alert_type for a in notifications] == ["worm"]
        # Sync, at once: this worker's alerts are in the snapshot as soon as raised.
        summary = monitor.get_security_summary()
        assert summary["active_alerts_count"] == 2
        assert summary["recent_alerts"] == {"LOW": 0, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 1}
        high = monitor.get_active_alerts(threat_level=ThreatLevel.HIGH)
        assert [a.alert_id for a in high] == ["alert_id_123"]
        acknowledged = monitor.acknowledge_alert("alert_id_123")
        assert isinstance(acknowledged, AwaitableBool) and acknowledged
        assert monitor.get_security_summary()["active_alerts_count"] == 1
        assert await acknowledged is True  # the store's answer
        stored = await monitor.get_alert("alert_id_123")
        assert stored is not None and stored.acknowledged
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_the_same_methods_awaited() -> None:
    """The async API stays: every getter and acknowledge awaited gives plain values."""
    monitor = SecurityMonitor(detectors=[])
    async with monitor:
        await monitor.raise_alert(SecurityAlert("a", ThreatLevel.LOW, "x", alert_id="a1"))
        summary = await monitor.get_security_summary()
        assert type(summary) is dict and summary["active_alerts_count"] == 1
        alerts = await monitor.get_active_alerts("low")
        assert type(alerts) is list and [a.alert_id for a in alerts] == ["a1"]
        assert await monitor.acknowledge_alert("a1") is True
        assert await monitor.acknowledge_alert("unknown") is False
        assert (await monitor.get_security_summary())["active_alerts_count"] == 0


def test_sync_code_outside_any_loop() -> None:
    """From sync code (a script, a sync endpoint's thread) the getters read the store
    through the monitor's own loop and acknowledge is done when it returns."""
    monitor = SecurityMonitor(detectors=[])
    try:
        assert monitor.get_security_summary()["active_alerts_count"] == 0
        assert monitor.get_active_alerts(threat_level="HIGH") == []
        assert not monitor.acknowledge_alert("alert_id_123")
    finally:
        monitor._portal.close()


# -- the guide's custom detector ("Custom Threat Detectors"), verbatim ----------------
class CustomThreatDetector(ThreatDetector):
    def __init__(self):  # type: ignore[no-untyped-def]
        super().__init__("custom_threat")

    async def analyze(self, event_data: dict) -> Optional[SecurityAlert]:  # type: ignore[type-arg]
        # Custom threat detection logic
        if self._detect_custom_threat(event_data):
            return SecurityAlert(
                alert_id=f"custom_{int(time.time())}",
                alert_type="custom_threat",
                threat_level=ThreatLevel.HIGH,
                title="Custom Threat Detected",
                description="Description of the threat",
                timestamp=datetime.now(timezone.utc),  # noqa: UP017 (verbatim)
                indicators={"custom_indicator": "value"},
                recommended_actions=["Take action A", "Take action B"],
            )
        return None

    def _detect_custom_threat(self, event_data: dict) -> bool:  # type: ignore[type-arg]
        # Implement custom detection logic
        return event_data["path"] == "/wp-admin" and event_data.get("method") == "GET"


@pytest.mark.anyio
async def test_custom_detector_example() -> None:
    """The guide's detector, registered as written, reads the event as a dict and
    raises its alert with the guide's fields; they reach the stored alert."""
    monitor = SecurityMonitor()
    monitor.register_detector(CustomThreatDetector())
    async with monitor:
        assert "custom_threat" in monitor.get_security_summary()["detectors"]
        monitor.submit(SecurityEvent(kind=EventKind.REQUEST, path="/", method="GET"))
        monitor.submit(SecurityEvent(kind=EventKind.REQUEST, path="/wp-admin", method="GET"))
        await monitor.flush()
        [alert] = monitor.get_active_alerts(threat_level=ThreatLevel.HIGH)
        assert alert.alert_type == "custom_threat" and alert.alert_id.startswith("custom_")
        assert alert.title == alert.message == "Custom Threat Detected"
        assert alert.description == "Description of the threat"
        assert alert.indicators == {"custom_indicator": "value"}
        assert alert.recommended_actions == ["Take action A", "Take action B"]
        assert abs(alert.timestamp - time.time()) < 3600  # a datetime became epoch seconds
        [stored] = await monitor.get_active_alerts(ThreatLevel.HIGH)
        assert stored.to_dict() == alert.to_dict()


def test_event_reads_as_a_dict() -> None:
    """A SecurityEvent answers the dict reads a guide detector makes."""
    event = SecurityEvent(kind=EventKind.LOGIN_FAILURE, source_ip="203.0.113.9", user_id="bob")
    assert event["source_ip"] == "203.0.113.9" and event.get("path") is None
    assert dict(event)["user_id"] == "bob" and "kind" in event
    with pytest.raises(KeyError):
        event["password"]


def test_deferred_refuses_to_be_read() -> None:
    """An action that cannot start unawaited says so instead of doing nothing."""

    async def never() -> int:
        raise AssertionError

    pending = Deferred("orchestrator.authenticate_user", never)
    with pytest.raises(RuntimeError, match="without await"):
        pending["authenticated"]


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop (the monitor's task) until ``condition`` holds; the bound
    stops a hang, it is not a speed claim."""
    with anyio.fail_after(10):
        for _ in range(100_000):
            if condition():
                return
            await anyio.sleep(0.02)


@pytest.fixture
async def two_workers(redis_url: str) -> AsyncIterator[tuple[SecurityMonitor, SecurityMonitor]]:
    stores: list[Store] = [create_store(redis_url, key_prefix="pns-guideb:") for _ in range(2)]
    for store in stores:
        await store.start()
    monitors = [SecurityMonitor(store=store, detectors=[], flush_interval=0.1) for store in stores]
    for monitor in monitors:
        await monitor.start_monitoring()
    yield monitors[0], monitors[1]
    for monitor, store in zip(monitors, stores, strict=True):
        await monitor.stop()
        await store.aclose()


@pytest.mark.anyio
async def test_sync_getters_follow_the_shared_store(
    two_workers: tuple[SecurityMonitor, SecurityMonitor],
) -> None:
    """On Redis, an alert raised and acknowledged by one worker reaches the other's
    sync getters through its monitor task's refresh (no await on that worker)."""
    one, two = two_workers
    await one.raise_alert(SecurityAlert("shared", ThreatLevel.HIGH, "x", alert_id="shared-1"))
    await _until(lambda: two.get_security_summary()["recent_alerts"]["HIGH"] == 1)
    assert [a.alert_id for a in two.get_active_alerts(threat_level=ThreatLevel.HIGH)] == [
        "shared-1"
    ]
    assert await one.acknowledge_alert("shared-1")
    await _until(lambda: not two.get_active_alerts(threat_level="HIGH"))
    assert two.get_security_summary()["active_alerts_count"] == 0
