"""The SecurityMonitor and its built-in detectors, with injected clocks."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from pynomaly_security.auth.lockout import LockoutManager
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
from pynomaly_security.storage.memory import MemoryStore

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC


def _locked(user: str = "alice", ip: str = "9.9.9.9") -> SecurityEvent:
    return SecurityEvent(
        kind=EventKind.LOCKOUT,
        source_ip=ip,
        user_id=user,
        timestamp=T0,
        details={
            "reason": "brute_force",
            "failures": 5,
            "duration": 900,
            "lock_key": "k",
            "lock_number": 1,
            "by": "user_and_ip",
        },
    )


@pytest.mark.anyio
async def test_brute_force_alerts_are_the_lockouts_events() -> None:
    """Failed logins are counted once, by the shared lockout: its lock becomes one HIGH
    brute_force alert through the monitor (more failures while locked add none), and a
    LOGIN_FAILURE event alone raises nothing."""
    clock = lambda: T0  # noqa: E731
    store = MemoryStore(clock=clock)
    monitor = SecurityMonitor(store=store, clock=clock)
    lockouts = LockoutManager(store, max_attempts=5, clock=clock, event_sink=monitor.submit)
    async with monitor:
        for _ in range(7):
            await lockouts.report_auth_failure("alice", "203.0.113.7")
        monitor.submit(SecurityEvent(kind=EventKind.LOGIN_FAILURE, source_ip="203.0.113.7"))
        await monitor.flush()
        alerts = await monitor.get_active_alerts()
    assert [(a.alert_type, a.threat_level) for a in alerts] == [("brute_force", ThreatLevel.HIGH)]
    (alert,) = alerts
    assert (alert.user_id, alert.source_ip) == ("alice", "203.0.113.7")
    assert alert.message == "5 failed sign-ins: locked for 900 s"
    assert alert.details["lock_number"] == 1 and alert.details["by"] == "user_and_ip"
    summary = await monitor.get_security_summary()
    assert summary["recent_metrics"]["lockouts"] == 1
    assert summary["recent_metrics"]["failed_logins"] == 1


@pytest.mark.anyio
async def test_status_lists_only_the_detectors_that_run() -> None:
    """Without an inspection layer the injection detector is not built; with
    monitoring off, no detector runs and none is listed."""
    from pynomaly_security import SecuritySettings

    settings = SecuritySettings(_env_file=None)  # type: ignore[call-arg]
    on = SecurityMonitor.from_settings(settings, injection=False)
    assert (await on.get_security_summary())["detectors"] == ["brute_force", "anomalous_access"]
    off = SecurityMonitor.from_settings(
        settings.model_copy(update={"threat_detection_enabled": False})
    )
    assert (await off.get_security_summary())["detectors"] == []


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
    assert summary["active_alerts_count"] == 1 and summary["recent_alerts"]["LOW"] == 1


@pytest.mark.anyio
async def test_queue_is_bounded_and_drops_are_counted() -> None:
    """When the queue is full, submit() returns False at once and counts the drop."""
    monitor = SecurityMonitor(detectors=[], queue_size=2)
    results = [monitor.submit(SecurityEvent(kind=EventKind.CUSTOM)) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert monitor.metrics["dropped_events"] == 3
    assert (await monitor.get_security_summary())["recent_metrics"]["dropped_events"] == 3
    await monitor.stop()


@pytest.mark.anyio
async def test_failing_detector_does_not_stop_the_others() -> None:
    """A detector that raises is logged and skipped."""

    class Broken(ThreatDetector):
        name = "broken"

        async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
            raise ValueError("bug")

    monitor = SecurityMonitor(detectors=[Broken(), BruteForceDetector()])
    with capture_logs() as logs:
        alerts = await monitor.process_event(_locked())
    assert [a.alert_type for a in alerts] == ["brute_force"]
    assert any(e["event"] == "security_detector_failed" for e in logs)


def test_the_monitor_task_stops_when_its_loop_closes() -> None:
    """An event submitted just before the loop closes does not keep the monitor's task
    alive: the loop's shutdown cancels it and the loop closes (on Python 3.11,
    ``asyncio.wait_for`` swallowed that cancel and the shutdown waited for ever)."""
    import asyncio
    import threading

    async def serve_one_event() -> None:
        monitor = SecurityMonitor(detectors=[])
        await monitor.start_monitoring()
        await asyncio.sleep(0)  # the task now waits for an event
        monitor.submit(SecurityEvent(kind=EventKind.CUSTOM))

    closed = threading.Event()

    def run() -> None:
        asyncio.run(serve_one_event())  # closing cancels every task left
        closed.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert closed.wait(60), "the loop never closed: the monitor's task ignored its cancel"
