"""Domain events and alerts: frozen values the monitor consumes and produces."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from starlette.types import Scope

from pynomaly_security._context import get_request_context
from pynomaly_security.tenancy.context import current_tenant

__all__ = [
    "ACCOUNT_LOCKED",
    "CREDENTIAL_STUFFING",
    "DISTRIBUTED_GUESSING",
    "EventKind",
    "SecurityAlert",
    "SecurityEvent",
    "ThreatLevel",
    "request_event",
]

# What the shared lockout reports (a LOCKOUT event's ``details["reason"]``), named
# as the alerts the brute-force detector makes of them: one name per threat.
ACCOUNT_LOCKED = "brute_force"
CREDENTIAL_STUFFING = "credential_stuffing"
DISTRIBUTED_GUESSING = "distributed_guessing"


class ThreatLevel(StrEnum):
    """How serious an alert is. Any case is accepted (``ThreatLevel("HIGH")``,
    ``?threat_level=HIGH`` as the integration guide writes it); the value stays
    lower case."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def _missing_(cls, value: object) -> ThreatLevel | None:
        # Enum lookup is by exact value; the guide spells levels by their names.
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None


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
    NOT_FOUND = "not_found"
    """A 404 answer, of any client (scanner sweeps); reported by the tracking layer."""
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class SecurityEvent(Mapping[str, Any]):
    """Something the middlewares (or the app) observed.

    ``details`` never holds request bodies or secrets: detection findings carry
    redacted excerpts only. Also readable as a read-only mapping of its fields
    (``event["path"]``, ``event.get("source_ip")``, ``dict(event)``): the
    integration guide's detectors take ``event_data: dict``.
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
    tenant: str | None = field(default_factory=current_tenant)
    """The tenant the event was made for (issue 21): captured when it is made, since
    the monitor analyses it in a background task with no request context. A layer
    outside the tenancy layer (tracking) passes the request context's ``tenant``.
    None: the platform's, or tenancy is off."""

    def __getitem__(self, key: str) -> Any:
        if key not in _EVENT_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_EVENT_FIELDS)

    def __len__(self) -> int:
        return len(_EVENT_FIELDS)


_EVENT_FIELDS = tuple(f.name for f in fields(SecurityEvent))


def request_event(
    kind: EventKind,
    scope: Scope,
    *,
    status_code: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> SecurityEvent:
    """The event a layer reports about the request it is serving: the client, user
    and request id from the request's context (``None`` each without one)."""
    ctx = get_request_context(scope)
    return SecurityEvent(
        kind=kind,
        source_ip=ctx.client_ip if ctx is not None else None,
        user_id=ctx.user_id if ctx is not None else None,
        path=scope["path"],
        method=scope["method"],
        status_code=status_code,
        request_id=ctx.request_id if ctx is not None else None,
        details=details if details is not None else {},
    )


@dataclass(slots=True)
class SecurityAlert:
    """A threat a detector concluded from one or more events.

    Built positionally (``SecurityAlert("admin_probe", ThreatLevel.LOW, "WordPress
    probe")``) or as the integration guide does, by name with ``title``,
    ``description``, a ``datetime`` ``timestamp``, ``indicators`` and
    ``recommended_actions``: ``message`` is then the title.
    """

    alert_type: str
    threat_level: ThreatLevel
    message: str = ""
    source_ip: str | None = None
    user_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: float = field(default_factory=time.time)
    acknowledged: bool = False
    acknowledged_at: float | None = None
    title: str = ""
    description: str = ""
    indicators: dict[str, Any] = field(default_factory=dict)
    recommended_actions: list[str] = field(default_factory=list)
    tenant: str | None = None
    """The tenant whose events raised it (set by the monitor; None: the platform's)."""

    def __post_init__(self) -> None:
        self.threat_level = ThreatLevel(self.threat_level)
        if isinstance(self.timestamp, dt.datetime):
            # A naive datetime is taken as UTC (the guide passes aware ones).
            stamp = self.timestamp
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            self.timestamp = stamp.timestamp()
        if not self.message:
            self.message = self.title or self.description or self.alert_type
        if not self.title:
            self.title = self.message

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
            "title": self.title,
            "description": self.description,
            "indicators": dict(self.indicators),
            "recommended_actions": list(self.recommended_actions),
            "tenant": self.tenant,
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
            title=data.get("title") or "",
            description=data.get("description") or "",
            indicators=dict(data.get("indicators") or {}),
            recommended_actions=list(data.get("recommended_actions") or ()),
            tenant=data.get("tenant"),
        )
