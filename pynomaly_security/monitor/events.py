"""Domain events and alerts: frozen values the monitor consumes and produces."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ACCOUNT_LOCKED",
    "CREDENTIAL_STUFFING",
    "DISTRIBUTED_GUESSING",
    "EventKind",
    "SecurityAlert",
    "SecurityEvent",
    "ThreatLevel",
]

# What the shared lockout reports (a LOCKOUT event's ``details["reason"]``), named
# as the alerts the brute-force detector makes of them: one name per threat.
ACCOUNT_LOCKED = "brute_force"
CREDENTIAL_STUFFING = "credential_stuffing"
DISTRIBUTED_GUESSING = "distributed_guessing"


class ThreatLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {ThreatLevel.LOW: 1, ThreatLevel.MEDIUM: 2, ThreatLevel.HIGH: 3, ThreatLevel.CRITICAL: 4}


class EventKind(StrEnum):
    REQUEST = "request"
    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    INJECTION = "injection"
    BLOCKED = "blocked"
    LOCKOUT = "lockout"
    """The shared lockout locked a key or saw credential stuffing (``auth/lockout.py``);
    ``details["reason"]`` says which, the brute-force detector makes the alert."""
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """Something the middlewares (or the app) observed.

    ``details`` never holds request bodies or secrets: detection findings carry
    redacted excerpts only.
    """

    kind: EventKind
    source_ip: str | None = None
    user_id: str | None = None
    path: str | None = None
    method: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    timestamp: float = field(default_factory=time.time)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SecurityAlert:
    """A threat a detector concluded from one or more events."""

    alert_type: str
    threat_level: ThreatLevel
    message: str
    source_ip: str | None = None
    user_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: float = field(default_factory=time.time)
    acknowledged: bool = False
    acknowledged_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "alert_type": self.alert_type,
            "threat_level": self.threat_level.value,
            "message": self.message,
            "source_ip": self.source_ip,
            "user_id": self.user_id,
            "details": dict(self.details),
            "timestamp": self.timestamp,
            "acknowledged": self.acknowledged,
            "acknowledged_at": self.acknowledged_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecurityAlert:
        """The alert :meth:`to_dict` gave (read back from a store)."""
        return cls(
            alert_type=data["alert_type"],
            threat_level=ThreatLevel(data["threat_level"]),
            message=data["message"],
            source_ip=data.get("source_ip"),
            user_id=data.get("user_id"),
            details=dict(data.get("details") or {}),
            alert_id=data["alert_id"],
            timestamp=float(data["timestamp"]),
            acknowledged=bool(data.get("acknowledged")),
            acknowledged_at=data.get("acknowledged_at"),
        )
