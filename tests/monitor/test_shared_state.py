"""Two monitors on one Redis stand for two workers: alerts, acknowledgement,
counters and the detectors' cool-downs are the same whichever one is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pynomaly_security.monitor import (
    EventKind,
    SecurityAlert,
    SecurityEvent,
    SecurityMonitor,
    ThreatLevel,
)
from pynomaly_security.storage import Store, create_store


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[tuple[SecurityMonitor, SecurityMonitor]]:
    stores: list[Store] = [create_store(redis_url, key_prefix="pns-mon-test:") for _ in range(2)]
    monitors = [SecurityMonitor(store=store) for store in stores]
    for monitor in monitors:
        await monitor.start_monitoring()
    yield monitors[0], monitors[1]
    for monitor, store in zip(monitors, stores, strict=True):
        await monitor.stop()
        await store.aclose()


def _injection(ip: str) -> SecurityEvent:
    return SecurityEvent(
        kind=EventKind.INJECTION,
        source_ip=ip,
        path="/search",
        method="GET",
        details={"families": ["sqli"], "blocked": True, "score": 9, "findings": []},
    )


@pytest.mark.anyio
async def test_alerts_and_acknowledgement_are_shared(
    workers: tuple[SecurityMonitor, SecurityMonitor],
) -> None:
    """An alert raised on one worker is listed by the other; acknowledged there, it is
    acknowledged for both, with one time, and both summaries agree."""
    one, two = workers
    alert = SecurityAlert("custom", ThreatLevel.HIGH, "seen on one", source_ip="198.51.100.1")
    await one.raise_alert(alert)
    await one.raise_alert(SecurityAlert("other", ThreatLevel.LOW, "low"))
    assert [a.alert_id for a in await two.get_active_alerts(ThreatLevel.HIGH)] == [alert.alert_id]
    assert await two.acknowledge_alert(alert.alert_id)
    first = await one.get_alert(alert.alert_id)
    assert first is not None and first.acknowledged and first.acknowledged_at is not None
    assert await one.acknowledge_alert(alert.alert_id)  # again: known, time kept
    again = await two.get_alert(alert.alert_id)
    assert again is not None and again.acknowledged_at == first.acknowledged_at
    for monitor in workers:
        summary = await monitor.get_security_summary()
        assert summary["active_alerts_count"] == 1
        assert summary["recent_alerts"] == {"LOW": 1, "MEDIUM": 0, "HIGH": 0, "CRITICAL": 0}


@pytest.mark.anyio
async def test_counters_add_up_across_workers(
    workers: tuple[SecurityMonitor, SecurityMonitor],
) -> None:
    """Each worker counts on its request path; the summary has every worker's counts."""
    one, two = workers
    for _ in range(2):
        one.submit(SecurityEvent(kind=EventKind.LOGIN_FAILURE, source_ip="192.0.2.1"))
    for _ in range(3):
        two.submit(SecurityEvent(kind=EventKind.LOGIN_FAILURE, source_ip="192.0.2.1"))
    two.count("blocked_requests")
    await one.flush()
    await two.flush()
    for monitor in workers:
        metrics = (await monitor.get_security_summary())["recent_metrics"]
        assert (metrics["failed_logins"], metrics["blocked_requests"]) == (5, 1)


@pytest.mark.anyio
async def test_a_threshold_fires_once_across_workers(
    workers: tuple[SecurityMonitor, SecurityMonitor],
) -> None:
    """The same injection attempt seen by both workers raises one alert: the
    detector's cool-down is one set-if-absent key in the shared store."""
    one, two = workers
    one.submit(_injection("203.0.113.50"))
    two.submit(_injection("203.0.113.50"))
    await one.flush()
    await two.flush()
    alerts = await one.get_active_alerts()
    assert [(a.alert_type, a.source_ip) for a in alerts] == [("injection_attack", "203.0.113.50")]
    assert await two.get_active_alerts() == alerts


@pytest.mark.anyio
async def test_a_new_address_is_judged_against_every_workers_history(
    workers: tuple[SecurityMonitor, SecurityMonitor],
) -> None:
    """A user's profile is shared: an address one worker saw is known to the other
    (no alert), and an address neither saw raises one MEDIUM alert."""
    one, two = workers

    def request(ip: str, n: int) -> SecurityEvent:
        return SecurityEvent(
            kind=EventKind.REQUEST, source_ip=ip, user_id="carol", timestamp=1_700_000_000.0 + n
        )

    for n in range(12):
        await (one if n % 2 else two).process_event(request("10.0.0.1", n))
    await one.process_event(request("10.0.0.2", 20))
    assert [a.details["reason"] for a in await two.get_active_alerts()] == ["new_ip"]
    assert await two.process_event(request("10.0.0.2", 21)) == []  # one worker saw it
