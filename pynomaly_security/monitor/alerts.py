"""Where alerts are kept: a small Protocol and a bounded in-memory store."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel

__all__ = ["AlertStore", "InMemoryAlertStore"]


class AlertStore(Protocol):
    """Keeps alerts for the router and the summary."""

    async def add(self, alert: SecurityAlert) -> None:
        """Store a new alert."""

    async def get(self, alert_id: str) -> SecurityAlert | None:
        """One alert by id."""

    async def list(
        self, *, threat_level: ThreatLevel | None = None, include_acknowledged: bool = False
    ) -> list[SecurityAlert]:
        """Alerts, newest first."""

    async def acknowledge(self, alert_id: str, at: float) -> SecurityAlert | None:
        """Mark an alert acknowledged; ``None`` for an unknown id."""


class InMemoryAlertStore:
    """The default store: at most ``max_alerts`` alerts, oldest evicted first."""

    def __init__(self, max_alerts: int = 10_000) -> None:
        self._alerts: OrderedDict[str, SecurityAlert] = OrderedDict()
        self._max = max_alerts

    async def add(self, alert: SecurityAlert) -> None:
        self._alerts[alert.alert_id] = alert
        while len(self._alerts) > self._max:
            self._alerts.popitem(last=False)

    async def get(self, alert_id: str) -> SecurityAlert | None:
        return self._alerts.get(alert_id)

    async def list(
        self, *, threat_level: ThreatLevel | None = None, include_acknowledged: bool = False
    ) -> list[SecurityAlert]:
        return [
            a
            for a in reversed(self._alerts.values())
            if (include_acknowledged or not a.acknowledged)
            and (threat_level is None or a.threat_level == threat_level)
        ]

    async def acknowledge(self, alert_id: str, at: float) -> SecurityAlert | None:
        alert = self._alerts.get(alert_id)
        if alert is not None and not alert.acknowledged:
            alert.acknowledged = True
            alert.acknowledged_at = at
        return alert
