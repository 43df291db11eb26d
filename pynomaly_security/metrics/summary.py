"""The JSON summary the dashboard page reads (``GET /api/security/metrics/summary``).

Posture at a glance (alerts by level, open incidents, blocked requests, lockouts,
audit integrity, compliance score, vulnerable dependencies: the last two from the
hub's optional providers, ``null`` when none is registered, which the page shows
as "not configured"), the top blocked routes and families, and the last 24 hours
of the one-minute series.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pynomaly_security.metrics.counters import SEP
from pynomaly_security.metrics.hub import MINUTES, MetricsHub, Snapshot, current_values

__all__ = ["build_summary", "posture"]

TOP = 10


def posture(snap: Snapshot) -> dict[str, Any]:
    """The tiles: every value the page shows at a glance (``None``: not available)."""
    blocked = sum(v for k, v in snap.tallies.items() if k.startswith("blocked" + SEP))
    compliance = snap.providers.get("compliance")
    vulns = snap.providers.get("vulnerabilities")
    audit = snap.audit
    return {
        "alerts_by_level": dict(snap.alerts_active),
        "active_alerts": sum(snap.alerts_active.values()),
        "open_incidents": snap.open_incidents,
        "blocked_requests": blocked,
        "requests": sum(v for k, v in snap.tallies.items() if k.startswith("inspected" + SEP)),
        "failed_logins": snap.monitor.get("failed_logins", 0),
        "lockouts_active": snap.lockouts_active,
        "decisions_active": None
        if snap.decisions_active is None
        else sum(snap.decisions_active.values()),
        "audit": None
        if audit is None
        else {
            "verified_ok": audit.get("verified_ok"),
            "verified_at": audit.get("verified_at"),
            "checkpoints": audit.get("checkpoints"),
            "chain_head_age_seconds": audit.get("checkpoint_age_seconds"),
            "dropped": audit.get("dropped"),
        },
        "compliance": None
        if compliance is None
        else {
            "frameworks": compliance,
            "score": round(sum(compliance.values()) / len(compliance), 1) if compliance else None,
        },
        "vulnerabilities": None
        if vulns is None
        else {"by_severity": vulns, "total": int(sum(vulns.values()))},
    }


def _top(snap: Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    routes: Counter[str] = Counter()
    families: Counter[str] = Counter()
    for key, value in snap.tallies.items():
        parts = key.split(SEP)
        if parts[0] == "blocked" and len(parts) in (3, 4):  # 4: with the tenant
            routes[parts[1]] += value
            families[parts[-1]] += value
    return (
        [{"route": r, "count": n} for r, n in routes.most_common(TOP)],
        [{"family": f, "count": n} for f, n in families.most_common(TOP)],
    )


async def build_summary(hub: MetricsHub, *, minutes: int = MINUTES) -> dict[str, Any]:
    """The summary: ``posture``, ``top_blocked_routes``, ``top_families``, ``series``."""
    snap = await hub.snapshot()
    first, series = await hub.series(minutes)
    routes, families = _top(snap)
    return {
        "generated_at": snap.at,
        "posture": posture(snap),
        "current": current_values(snap),
        "top_blocked_routes": routes,
        "top_families": families,
        "series": {"start": first * 60, "step_seconds": 60, "minutes": minutes, **series},
        "sources_up": snap.sources_up,
        "thresholds": [rule.text for rule in hub.rules],
    }
