"""Threat detectors: each turns events into (at most one) alert.

Custom detectors subclass :class:`ThreatDetector` (or are any object with an
``async analyze(event)``) and are added with ``monitor.register_detector``.

Every worker runs the detectors on the events it saw, against state in the
shared store (the stack's: Redis when workers share one): a user's profile, and
each alert's cool-down as one set-if-absent key, so a threat seen by several
workers at once raises one alert. Login failures are counted once, by the
shared lockout (``auth/lockout.py``): the brute-force detector only turns the
lockout's events into alerts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from pynomaly_security._bounded import BoundedDict
from pynomaly_security.monitor.events import (
    ACCOUNT_LOCKED,
    CREDENTIAL_STUFFING,
    DISTRIBUTED_GUESSING,
    EventKind,
    SecurityAlert,
    SecurityEvent,
    ThreatLevel,
)
from pynomaly_security.storage.base import CounterStore, KeyValueStore, MemberStore
from pynomaly_security.storage.memory import MemoryStore

__all__ = [
    "AnomalousAccessDetector",
    "BruteForceDetector",
    "Detector",
    "InjectionAttackDetector",
    "ThreatDetector",
    "lockout_alert",
]


@runtime_checkable
class Detector(Protocol):
    name: str

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        """Return an alert when the event (with what came before) is a threat."""


class ThreatDetector:
    """Base class for custom detectors.

    Name one with a class attribute (``name = "admin_probe"``) or, as the
    integration guide does, ``super().__init__("custom_threat")``. ``analyze``
    gets the :class:`SecurityEvent`, also readable as a mapping
    (``event_data["path"]``), and returns an alert or ``None``.
    """

    name: str = "custom"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        raise NotImplementedError


class _DetectorStore(CounterStore, KeyValueStore, MemberStore, Protocol):
    """What the built-in detectors keep in the shared store."""


def _key(*parts: str) -> str:
    # Parts are attacker text (user names, paths): a digest keeps store keys short.
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _Cooldown:
    """Which keys alerted recently, in the shared store: one attack raises one alert,
    however many workers see it (the first set-if-absent wins)."""

    def __init__(self, store: KeyValueStore, name: str, seconds: float) -> None:
        self.seconds = seconds
        self._store = store
        self._prefix = f"monitor:cooldown:{name}:"

    async def ready(self, *parts: str) -> bool:
        return await self._store.add(self._prefix + _key(*parts), "1", self.seconds)


def lockout_alert(event: SecurityEvent) -> SecurityAlert | None:
    """The alert a LOCKOUT event stands for (None for any other event): a lock, one
    IP failing for many user names or one name from many IPs, or one account's
    budget spent from many addresses. The lockout reports each once across workers
    (its own set-if-absent keys), so this needs no cool-down."""
    if event.kind is not EventKind.LOCKOUT:
        return None
    d: Mapping[str, Any] = event.details
    reason = d.get("reason")
    if reason == ACCOUNT_LOCKED:
        message = f"{d['failures']} failed sign-ins: locked for {int(d['duration'])} s"
        details = {"lock_key": d["lock_key"], "lock_number": d["lock_number"], "by": d["by"]}
    elif reason == CREDENTIAL_STUFFING:
        by_ip = d["kind"] == "ip"
        message = (
            f"one IP failed sign-in for {d['distinct']} user names"
            if by_ip
            else f"one user name failed sign-in from {d['distinct']} IPs"
        )
        details = {
            "pattern": "one_ip_many_users" if by_ip else "one_user_many_ips",
            "distinct": d["distinct"],
            "window": d["window"],
        }
    elif reason == DISTRIBUTED_GUESSING:
        message = (
            f"{d['failures']} failed sign-ins for one account from {d['distinct_ips']} "
            f"address(es): its sign-ins are refused for up to {d['window']} s"
        )
        details = {
            "pattern": "one_account_many_guesses",
            "failures": d["failures"],
            "distinct_ips": d["distinct_ips"],
            "window": d["window"],
            "account_key": d["account_key"],
        }
    else:
        return None
    return SecurityAlert(
        alert_type=reason,
        threat_level=ThreatLevel.HIGH,
        message=message,
        source_ip=event.source_ip,
        user_id=event.user_id,
        details=details,
        timestamp=event.timestamp,
    )


class BruteForceDetector(ThreatDetector):
    """HIGH alert for each lock, credential-stuffing pattern or spent account budget
    the shared lockout reports (:func:`lockout_alert`). Failures are counted once,
    by the lockout (``auth/lockout.py``, django-axes semantics), never here."""

    name = "brute_force"

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        return lockout_alert(event)


class AnomalousAccessDetector(ThreatDetector):
    """MEDIUM alert when a known user appears from a new IP; LOW when a known
    user is active at an hour (UTC) they have never been active at.

    A user is "known" after ``min_history`` events. The profile (events seen,
    addresses, hours) lives in the shared store for ``retention`` seconds, so
    every worker judges a request against all of the user's requests. Once a
    profile is mature and an (address, hour) known, the same pair is remembered
    here for ``memo_seconds`` (at most ``max_users`` pairs): it cannot alert, and
    skipping the store for it keeps a busy user's requests cheap.

    With behavioural detection on (issue 22), ``behaviour`` gives a user's recent
    behaviour (``AnomalyEngine.behaviour``: the lowest 1-99 score of their recent
    requests and its explanation, their window's rate, spread and errors): a
    known user whose requests score at or below ``behaviour_alert_score`` raises a
    MEDIUM alert (reason ``unusual_behaviour``), once an hour, and every alert of
    this detector carries the user's behavioural score.
    """

    name = "anomalous_access"

    def __init__(
        self,
        store: _DetectorStore | None = None,
        *,
        min_history: int = 10,
        hour_min_history: int = 50,
        retention: float = 30 * 86_400.0,
        max_users: int = 100_000,
        memo_seconds: float = 600.0,
    ) -> None:
        self.min_history = min_history
        self.hour_min_history = hour_min_history
        self._store: _DetectorStore = store if store is not None else MemoryStore()
        self._retention = retention
        self._cooldown = _Cooldown(self._store, self.name, 3600.0)
        # Keyed by tenant too: alice of tenant A being known says nothing of B's alice.
        self._known: BoundedDict[tuple[str | None, str, str | None, int], float] = BoundedDict(
            max_users
        )
        self._memo_seconds = memo_seconds
        self.behaviour: Callable[[str], Mapping[str, Any] | None] | None = None
        self.behaviour_alert_score = 30

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        user = event.user_id
        if user is None or event.kind not in (EventKind.REQUEST, EventKind.LOGIN_SUCCESS):
            return None
        behaviour = self.behaviour(user) if self.behaviour is not None else None
        if behaviour is not None and behaviour.get("low_score", 99) <= self.behaviour_alert_score:
            unusual = await self._unusual_behaviour(event, user, behaviour)
            if unusual is not None:
                return unusual
        hour = time.gmtime(event.timestamp).tm_hour
        ip = event.source_ip
        memo = (event.tenant, user, ip, hour)
        until = self._known.get(memo)
        if until is not None and until > event.timestamp:
            return None
        store, ttl, profile = self._store, self._retention, _key(user)
        seen = await store.incr(f"monitor:profile:{profile}:seen", ttl) - 1
        ips_key = f"monitor:profile:{profile}:ips"
        known_ip = ip is None or await store.has_member(ips_key, ip, ttl)
        ips = await store.add_member(ips_key, ip, ttl) if ip is not None else 0
        hour_seen = await store.incr(f"monitor:profile:{profile}:hour:{hour}", ttl) - 1
        alert: SecurityAlert | None = None
        if seen >= self.min_history and not known_ip:
            if await self._cooldown.ready("ip", user, ip or ""):
                alert = SecurityAlert(
                    alert_type="anomalous_access",
                    threat_level=ThreatLevel.MEDIUM,
                    message="known user seen from a new IP address",
                    source_ip=ip,
                    user_id=user,
                    details={
                        "reason": "new_ip",
                        "known_ips": ips - 1,
                        **_behaviour_score(behaviour),
                    },
                    timestamp=event.timestamp,
                )
        elif seen >= self.hour_min_history and hour_seen == 0:  # noqa: SIM102
            if await self._cooldown.ready("hour", user, str(hour)):
                alert = SecurityAlert(
                    alert_type="anomalous_access",
                    threat_level=ThreatLevel.LOW,
                    message="known user active at an unusual hour",
                    source_ip=ip,
                    user_id=user,
                    details={
                        "reason": "unusual_hour",
                        "hour_utc": hour,
                        **_behaviour_score(behaviour),
                    },
                    timestamp=event.timestamp,
                )
        if seen >= self.hour_min_history and known_ip and hour_seen > 0:
            self._known[memo] = event.timestamp + self._memo_seconds
        return alert

    async def _unusual_behaviour(
        self, event: SecurityEvent, user: str, behaviour: Mapping[str, Any]
    ) -> SecurityAlert | None:
        """A known user (``min_history`` requests) whose recent requests look unlike
        their endpoints' traffic; one alert per user and hour across workers."""
        seen = await self._store.get_count(f"monitor:profile:{_key(user)}:seen")
        if seen < self.min_history or not await self._cooldown.ready("behaviour", user):
            return None
        return SecurityAlert(
            alert_type="anomalous_access",
            threat_level=ThreatLevel.MEDIUM,
            message="known user's requests unlike their endpoints' traffic",
            source_ip=event.source_ip,
            user_id=user,
            details={"reason": "unusual_behaviour", **_behaviour_score(behaviour)},
            timestamp=event.timestamp,
        )


def _behaviour_score(behaviour: Mapping[str, Any] | None) -> dict[str, Any]:
    if behaviour is None:
        return {}
    return {
        "behaviour_score": behaviour.get("low_score"),
        "behaviour": {k: v for k, v in behaviour.items() if k != "low_score"},
    }


class InjectionAttackDetector(ThreatDetector):
    """HIGH alert for an injection attempt (CRITICAL when it was neither blocked nor
    sink-confirmed),
    at most one per client IP and family per ``cooldown`` seconds, across workers."""

    name = "injection"

    def __init__(self, store: KeyValueStore | None = None, *, cooldown: float = 60.0) -> None:
        self._cooldown = _Cooldown(
            store if store is not None else MemoryStore(), self.name, cooldown
        )

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        if event.kind is not EventKind.INJECTION:
            return None
        families = sorted(event.details.get("families", ()))
        if not await self._cooldown.ready(event.source_ip or "", ",".join(families)):
            return None
        blocked = bool(event.details.get("blocked"))
        # Sink-confirmed (SQLI_EDGE_MODE): not blocked here, but the SQL sink blocks
        # it at any statement it would change, so it is no unguarded hit.
        guarded = blocked or bool(event.details.get("sink_confirmed"))
        outcome = "blocked" if blocked else "passed to the SQL sink" if guarded else None
        return SecurityAlert(
            alert_type="injection_attack",
            threat_level=ThreatLevel.HIGH if guarded else ThreatLevel.CRITICAL,
            message=f"{'/'.join(families) or 'injection'} attempt "
            + (outcome or "detected (not blocked)"),
            source_ip=event.source_ip,
            user_id=event.user_id,
            details={
                "families": families,
                "blocked": blocked,
                "sink_confirmed": bool(event.details.get("sink_confirmed")),
                "score": event.details.get("score"),
                "findings": list(event.details.get("findings", ())),
                "path": event.path,
                "method": event.method,
                "request_id": event.request_id,
            },
            timestamp=event.timestamp,
        )
