"""Response models of the ``/api/security`` router (they appear in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel

__all__ = ["ActivityOut", "AlertOut", "AlertsOut", "RecentMetrics", "StatusOut", "UserActivityOut"]


class RecentMetrics(BaseModel):
    """Counts of every worker (each adds its own from the background)."""

    failed_logins: int
    successful_logins: int
    injection_attempts: int
    blocked_requests: int = 0
    requests: int = 0
    lockouts: int = 0
    dropped_events: int = 0


class StatusOut(BaseModel):
    monitoring_enabled: bool
    running: bool = Field(description="Whether this worker's monitor task runs.")
    active_alerts_count: int
    recent_alerts: dict[str, int] = Field(
        description='Active alerts by threat level name, as the guide shows: {"HIGH": 2}.'
    )
    recent_metrics: RecentMetrics
    detectors: list[str] = Field(description="The detectors that run.")
    queue_depth: int = Field(description="Events this worker has yet to analyse.")
    sqli_edge: str | None = Field(
        default=None,
        description=(
            "What SQL injection findings do at the inspection layer (SQLI_EDGE_MODE, "
            "effective): block, detect, or sink_confirmed (passed to the SQL sink, "
            "which blocks); null without inspection."
        ),
    )


class AlertOut(BaseModel):
    alert_id: str
    alert_type: str
    threat_level: ThreatLevel
    message: str
    source_ip: str | None
    user_id: str | None
    details: dict[str, Any]
    timestamp: float
    acknowledged: bool
    acknowledged_at: float | None
    title: str = ""
    description: str = ""
    indicators: dict[str, Any] = Field(default_factory=dict)
    recommended_actions: list[str] = Field(default_factory=list)
    tenant: str | None = Field(
        None, description="The tenant whose events raised it (tenancy on); null: the platform's."
    )

    @classmethod
    def from_alert(cls, alert: SecurityAlert) -> AlertOut:
        return cls(**alert.to_dict())


class AlertsOut(BaseModel):
    count: int
    alerts: list[AlertOut]


class ActivityOut(BaseModel):
    timestamp: float
    method: str
    path: str
    status_code: int
    client_ip: str | None
    request_id: str
    duration_ms: float


class UserActivityOut(BaseModel):
    user_id: str
    hours: float
    count: int
    activities: list[ActivityOut]
