"""The SecurityMonitor and its built-in detectors, with injected clocks."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from pynomaly_security.monitor import (
    AnomalousAccessDetector,
    BruteForceDetector,
    EventKind,
    SecurityAlert,
    SecurityEvent,
    SecurityMonitor,
    ThreatDetector,
    ThreatLevel,
)

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC


def _failure(ip: str, n: int, user: str = "alice", at: float = T0) -> SecurityEvent:
    return SecurityEvent(
        kind=EventKind.LOGIN_FAILURE,
        source_ip=ip,
        timestamp=at,
        details={"username": user, "ip_failures": n, "user_failures": n},
    )


@pytest.mark.anyio
async def test_brute_force_alerts_once_per_window() -> None:
    """The N-th failure raises one HIGH alert; more failures in the window do not repeat it."""
    detector = BruteForceDetector(max_attempts=5, window=300)
    assert await detector.analyze(_failure("1.2.3.4", 4)) is None
    alert = await detector.analyze(_failure("1.2.3.4", 5))
    assert alert is not None and alert.threat_level is ThreatLevel.HIGH
    assert await detector.analyze(_failure("1.2.3.4", 6, at=T0 + 10)) is None
    assert await detector.analyze(_failure("1.2.3.4", 5, at=T0 + 301)) is not None


@pytest.mark.anyio
async def test_anomalous_access_new_ip_and_unusual_hour() -> None:
    """A known user from a new IP is MEDIUM; at a never-seen hour it is LOW."""
    detector = AnomalousAccessDetector(min_history=3, hour_min_history=5)

    def ev(ip: str, at: float) -> SecurityEvent:
        return SecurityEvent(kind=EventKind.REQUEST, source_ip=ip, user_id="u1", timestamp=at)

    for i in range(5):
        assert await detector.analyze(ev("10.0.0.1", T0 + i)) is None
    new_ip = await detector.analyze(ev("198.51.100.1", T0 + 10))
    assert new_ip is not None and new_ip.threat_level is ThreatLevel.MEDIUM
    odd_hour = await detector.analyze(ev("10.0.0.1", T0 + 6 * 3600))
    assert odd_hour is not None and odd_hour.details["reason"] == "unusual_hour"


@pytest.mark.anyio
async def test_custom_detector_and_handlers_sync_async_and_failing() -> None:
    """Custom detectors raise alerts; sync and async handlers run; a raising one is logged only."""

    class AdminPath(ThreatDetector):
        name = "admin_path"

        async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
            if event.path == "/admin":
                return SecurityAlert("admin_probe", ThreatLevel.LOW, "admin probed")
            return None

    got: list[str] = []

    def sync_handler(alert: SecurityAlert) -> None:
        got.append("sync:" + alert.alert_type)

    async def async_handler(alert: SecurityAlert) -> None:
        got.append("async:" + alert.alert_type)

    def broken(alert: SecurityAlert) -> None:
        raise RuntimeError("webhook down")

    monitor = SecurityMonitor(detectors=[])
    monitor.register_detector(AdminPath())
    for handler in (sync_handler, broken, async_handler):
        monitor.register_alert_handler(handler)
    with capture_logs() as logs:
        async with monitor:
            assert monitor.submit(SecurityEvent(kind=EventKind.CUSTOM, path="/admin"))
            await monitor.flush()
    assert got == ["sync:admin_probe", "async:admin_probe"]
    assert any(e["event"] == "security_alert_handler_failed" for e in logs)


@pytest.mark.anyio
async def test_acknowledge_and_filter() -> None:
    """Acknowledged alerts leave the active list; unknown ids return False."""
    monitor = SecurityMonitor(detectors=[])
    high = SecurityAlert("a", ThreatLevel.HIGH, "x")
    low = SecurityAlert("b", ThreatLevel.LOW, "y")
    await monitor.raise_alert(high)
    await monitor.raise_alert(low)
    assert [a.alert_id for a in await monitor.get_active_alerts(ThreatLevel.HIGH)] == [
        high.alert_id
    ]
    assert await monitor.acknowledge_alert(high.alert_id)
    assert not await monitor.acknowledge_alert("nope")
    assert [a.alert_id for a in await monitor.get_active_alerts()] == [low.alert_id]
    summary = await monitor.get_security_summary()
    assert summary["active_alerts_count"] == 1 and summary["recent_alerts"]["low"] == 1


@pytest.mark.anyio
async def test_queue_is_bounded_and_drops_are_counted() -> None:
    """When the queue is full, submit() returns False at once and counts the drop."""
    monitor = SecurityMonitor(detectors=[], queue_size=2)
    results = [monitor.submit(SecurityEvent(kind=EventKind.CUSTOM)) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert monitor.metrics["dropped_events"] == 3
    await monitor.stop()


@pytest.mark.anyio
async def test_failing_detector_does_not_stop_the_others() -> None:
    """A detector that raises is logged and skipped."""

    class Broken(ThreatDetector):
        name = "broken"

        async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
            raise ValueError("bug")

    monitor = SecurityMonitor(detectors=[Broken(), BruteForceDetector(1, 60)])
    with capture_logs() as logs:
        alerts = await monitor.process_event(_failure("9.9.9.9", 1))
    assert [a.alert_type for a in alerts] == ["brute_force"]
    assert any(e["event"] == "security_detector_failed" for e in logs)
