"""Where alerts are kept: a small Protocol and its implementation on the shared store.

Alerts are documents in the store's ``alerts`` collection, indexed by threat
level and acknowledgement: in memory for one process by default, in Redis when
the stack shares a store across workers, so every worker lists, counts and
acknowledges the same alerts.
"""

from __future__ import annotations

from typing import Protocol

from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.storage.base import DocumentStore

__all__ = ["AlertStore", "StoredAlerts"]


class AlertStore(Protocol):
    """Keeps alerts for the router and the summary."""

    async def add(self, alert: SecurityAlert) -> None:
        """Store a new alert."""

    async def get(self, alert_id: str) -> SecurityAlert | None:
        """One alert by id."""

    async def list(
        self,
        *,
        threat_level: ThreatLevel | None = None,
        include_acknowledged: bool = False,
        limit: int = 1000,
    ) -> list[SecurityAlert]:
        """Alerts, newest first, at most ``limit``."""

    async def acknowledge(self, alert_id: str, at: float) -> SecurityAlert | None:
        """Mark an alert acknowledged (once: a second call keeps the first time);
        ``None`` for an unknown id."""

    async def count_active(self) -> dict[ThreatLevel, int]:
        """Unacknowledged alerts per threat level."""


class StoredAlerts:
    """:class:`AlertStore` on a :class:`~pynomaly_security.storage.base.DocumentStore`:
    at most ``max_alerts`` alerts, oldest dropped first."""

    def __init__(self, store: DocumentStore, max_alerts: int = 10_000) -> None:
        self._docs = store.documents(
            "alerts", indexed=("threat_level", "acknowledged"), keep=max_alerts
        )

    async def add(self, alert: SecurityAlert) -> None:
        await self._docs.put(alert.alert_id, alert.to_dict())

    async def get(self, alert_id: str) -> SecurityAlert | None:
        found = await self._docs.get(alert_id)
        return SecurityAlert.from_dict(found) if found is not None else None

    async def list(
        self,
        *,
        threat_level: ThreatLevel | None = None,
        include_acknowledged: bool = False,
        limit: int = 1000,
    ) -> list[SecurityAlert]:
        where: dict[str, str | bool] = {}
        if not include_acknowledged:
            where["acknowledged"] = False
        if threat_level is not None:
            where["threat_level"] = threat_level.value
        return [SecurityAlert.from_dict(d) for d in await self._docs.find(where, limit=limit)]

    async def acknowledge(self, alert_id: str, at: float) -> SecurityAlert | None:
        # Compare-and-set: two admins (or workers) acknowledging at once keep one time.
        found = await self._docs.update(
            alert_id, {"acknowledged": True, "acknowledged_at": at}, only_if={"acknowledged": False}
        )
        return SecurityAlert.from_dict(found) if found is not None else None

    async def count_active(self) -> dict[ThreatLevel, int]:
        counts = await self._docs.count({"acknowledged": False}, group_by="threat_level")
        return {level: counts.get(level.value, 0) for level in ThreatLevel}
