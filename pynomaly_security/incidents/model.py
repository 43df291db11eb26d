"""The incident: severity, the lifecycle and its allowed transitions, bounds, metrics.

Pure data (no I/O): ``store.py`` keeps incidents as documents in the stack's
state, ``automation.py`` drives them and writes each change to the audit trail.

Lifecycle (NIST SP 800-61's phases; ``false_positive`` and ``duplicate`` end an
incident that was never one)::

    new -> triaged -> contained -> eradicated -> recovered -> closed
      \\        \\-> eradicated | closed  (nothing to contain)
       \\-> contained (contain first, triage later)
    new | triaged -> false_positive | duplicate
    contained -> recovered | closed;  eradicated -> closed
    closed | false_positive | duplicate -> triaged  (reopen)

Metrics come from the times each status was first entered (the same times the
timeline's audit records carry): time to detect is from the first event seen to
the incident's creation, time to contain from creation to ``contained``, time
to resolve from creation to ``closed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pynomaly_security.audit.bounds import cut
from pynomaly_security.tenancy.context import namespace

__all__ = [
    "CLOSED_STATES",
    "MAX_ALERTS",
    "MAX_NOTES",
    "MAX_OBSERVABLES",
    "MAX_TIMELINE",
    "OBSERVABLE_KINDS",
    "TRANSITIONS",
    "Incident",
    "IncidentSeverity",
    "IncidentStatus",
    "InvalidTransition",
    "check_transition",
    "dedup_digest",
]

MAX_ALERTS = 200
"""Alert ids linked to one incident (the oldest kept: they opened it)."""
MAX_OBSERVABLES = 50
"""Values kept per kind of observable, and affected assets."""
MAX_NOTES = 200
MAX_TIMELINE = 1000
"""Audit sequence numbers kept on the incident; beyond, the records are still written
and counted (``timeline_dropped``) and can be found by ``incident_id`` in the trail."""
MAX_TEXT = 2000
"""Characters of a title, description or note (cut with a marker beyond)."""
MAX_NAME = 200
"""Characters of an observable, asset, assignee or actor."""
OBSERVABLE_KINDS = ("ips", "users", "sessions", "routes")


class IncidentSeverity(StrEnum):
    """How serious an incident is; any case is accepted (``IncidentSeverity("HIGH")``),
    like :class:`~pynomaly_security.monitor.events.ThreatLevel`."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def _missing_(cls, value: object) -> IncidentSeverity | None:
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None


class IncidentStatus(StrEnum):
    """Where an incident is in its lifecycle (see the module); any case is accepted."""

    NEW = "new"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    ERADICATED = "eradicated"
    RECOVERED = "recovered"
    CLOSED = "closed"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"

    @classmethod
    def _missing_(cls, value: object) -> IncidentStatus | None:
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper().replace("-", "_"))
        return None

    @property
    def is_open(self) -> bool:
        """Whether the incident still takes repeats of its pattern (dedup)."""
        return self not in CLOSED_STATES


S = IncidentStatus
CLOSED_STATES = frozenset({S.CLOSED, S.FALSE_POSITIVE, S.DUPLICATE})
TRANSITIONS: Mapping[IncidentStatus, frozenset[IncidentStatus]] = {
    S.NEW: frozenset({S.TRIAGED, S.CONTAINED, S.FALSE_POSITIVE, S.DUPLICATE}),
    S.TRIAGED: frozenset({S.CONTAINED, S.ERADICATED, S.CLOSED, S.FALSE_POSITIVE, S.DUPLICATE}),
    S.CONTAINED: frozenset({S.ERADICATED, S.RECOVERED, S.CLOSED}),
    S.ERADICATED: frozenset({S.RECOVERED, S.CLOSED}),
    S.RECOVERED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset({S.TRIAGED}),
    S.FALSE_POSITIVE: frozenset({S.TRIAGED}),
    S.DUPLICATE: frozenset({S.TRIAGED}),
}
"""Every allowed move; anything else is :class:`InvalidTransition`."""


class InvalidTransition(ValueError):
    """A status change the lifecycle does not allow (the API answers 409)."""

    def __init__(self, incident_id: str, current: IncidentStatus, wanted: IncidentStatus) -> None:
        self.current, self.wanted = current, wanted
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        super().__init__(
            f"incident {incident_id} cannot move from {current.value!r} to {wanted.value!r}"
            f" (from {current.value!r}: {allowed})"
        )


def check_transition(incident_id: str, current: IncidentStatus, wanted: IncidentStatus) -> None:
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(incident_id, current, wanted)


def dedup_digest(dedup_key: str, tenant: str | None = None) -> str:
    """The indexed form of a dedup key: fixed length whatever the key (an IP, a user).
    A tenant's is bound to the tenant, so two tenants' incidents of one pattern have
    two ids (and two timelines in the audit trail)."""
    text = dedup_key if tenant is None else namespace(tenant) + dedup_key
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _looks_like_token(value: str) -> bool:
    # A session observable is the session's id (a JWT's jti), never the token itself:
    # a token in an incident would be a live credential in the state and the trail.
    return value.startswith("eyJ") and value.count(".") >= 2


def bounded_names(values: Iterable[object], limit: int = MAX_OBSERVABLES) -> list[str]:
    """Distinct non-empty names, in order, each cut to :data:`MAX_NAME`, at most ``limit``."""
    out: list[str] = []
    for value in values:
        text = cut(str(value).strip(), MAX_NAME)
        if text and text not in out:
            out.append(text)
            if len(out) >= limit:
                break
    return out


def clean_observables(given: Mapping[str, Iterable[object]] | None) -> dict[str, list[str]]:
    """Observables by kind (``ips``, ``users``, ``sessions``, ``routes``), bounded.

    Raises:
        ValueError: an unknown kind, or a session given as a token instead of its id.
    """
    out: dict[str, list[str]] = {kind: [] for kind in OBSERVABLE_KINDS}
    for kind, values in (given or {}).items():
        if kind not in out:
            raise ValueError(
                f"unknown observable kind {kind!r}; expected one of {OBSERVABLE_KINDS}"
            )
        if isinstance(values, str):
            values = [values]
        names = bounded_names(values)
        if kind == "sessions" and any(_looks_like_token(v) for v in names):
            raise ValueError("a session observable is the session id (jti), never a token")
        out[kind] = names
    return out


def merge_names(old: Sequence[str], new: Iterable[str], limit: int) -> list[str]:
    """``old`` then the values of ``new`` it lacks, at most ``limit`` (the oldest kept)."""
    return bounded_names([*old, *new], limit)


@dataclass(slots=True)
class Incident:
    """One incident as stored (``to_dict``/``from_dict`` are the document's shape)."""

    incident_id: str
    title: str
    description: str
    severity: IncidentSeverity
    status: IncidentStatus
    created_at: float
    updated_at: float
    first_seen: float
    """When the first event of the incident happened (detection time is measured from it)."""
    last_seen: float
    occurrences: int = 1
    """How many times its pattern was reported (1 + repeats deduplicated into it)."""
    dedup_key: str | None = None
    dedup: str | None = None
    """:func:`dedup_digest` of ``dedup_key`` (indexed)."""
    dedup_gen: int = 0
    alert_ids: list[str] = field(default_factory=list)
    observables: dict[str, list[str]] = field(default_factory=dict)
    affected_assets: list[str] = field(default_factory=list)
    assignee: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    status_times: dict[str, float] = field(default_factory=dict)
    """When each status was first entered."""
    timeline: list[int] = field(default_factory=list)
    """Audit sequence numbers of this incident's records, oldest first."""
    timeline_dropped: int = 0
    source: str = "api"
    created_by: str | None = None
    intel_lists: list[str] = field(default_factory=list)
    """Imported reputation lists one of its addresses is on (threat intelligence)."""
    rev: str = ""
    """Changes with each write (compare-and-set token)."""
    tenant: str | None = None
    """The tenant it belongs to (issue 21: opened in its scope); None: the platform's."""

    @property
    def metrics(self) -> dict[str, float | None]:
        """Seconds to detect, contain and resolve (None until that status is reached)."""
        contained = self.status_times.get(S.CONTAINED.value)
        closed = self.status_times.get(S.CLOSED.value)
        return {
            "time_to_detect": max(0.0, self.created_at - self.first_seen),
            "time_to_contain": None if contained is None else contained - self.created_at,
            "time_to_resolve": None if closed is None else closed - self.created_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "title": self.title,
            "description": self.description,
            "severity": self.severity.value,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "occurrences": self.occurrences,
            "dedup_key": self.dedup_key,
            "dedup": self.dedup,
            "dedup_gen": self.dedup_gen,
            "alert_ids": list(self.alert_ids),
            "observables": {k: list(v) for k, v in self.observables.items()},
            "affected_assets": list(self.affected_assets),
            "assignee": self.assignee,
            "notes": [dict(n) for n in self.notes],
            "status_times": dict(self.status_times),
            "timeline": list(self.timeline),
            "timeline_dropped": self.timeline_dropped,
            "source": self.source,
            "created_by": self.created_by,
            "intel_lists": list(self.intel_lists),
            "rev": self.rev,
            "tenant": self.tenant,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Incident:
        return cls(
            incident_id=str(doc["incident_id"]),
            title=str(doc["title"]),
            description=str(doc.get("description") or ""),
            severity=IncidentSeverity(doc["severity"]),
            status=IncidentStatus(doc["status"]),
            created_at=float(doc["created_at"]),
            updated_at=float(doc["updated_at"]),
            first_seen=float(doc["first_seen"]),
            last_seen=float(doc["last_seen"]),
            occurrences=int(doc.get("occurrences", 1)),
            dedup_key=doc.get("dedup_key"),
            dedup=doc.get("dedup"),
            dedup_gen=int(doc.get("dedup_gen", 0)),
            alert_ids=list(doc.get("alert_ids") or []),
            observables={k: list(v) for k, v in (doc.get("observables") or {}).items()},
            affected_assets=list(doc.get("affected_assets") or []),
            assignee=doc.get("assignee"),
            notes=[dict(n) for n in doc.get("notes") or []],
            status_times={str(k): float(v) for k, v in (doc.get("status_times") or {}).items()},
            timeline=[int(s) for s in doc.get("timeline") or []],
            timeline_dropped=int(doc.get("timeline_dropped", 0)),
            source=str(doc.get("source") or "api"),
            created_by=doc.get("created_by"),
            intel_lists=[str(n) for n in doc.get("intel_lists") or []],
            rev=str(doc.get("rev") or ""),
            tenant=doc.get("tenant"),
        )

    def public(self) -> dict[str, Any]:
        """What the API and the automation's callers see: the document plus metrics,
        without the internal dedup digest and revision token."""
        out = self.to_dict()
        del out["dedup"], out["rev"]
        out["metrics"] = self.metrics
        return out
