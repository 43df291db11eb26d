"""Threat detectors: each turns events into (at most one) alert.

Custom detectors subclass :class:`ThreatDetector` (or are any object with an
``async analyze(event)``) and are added with ``monitor.register_detector``.
Every per-key map is bounded; clocks come from the events' timestamps.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pynomaly_security._bounded import BoundedDict
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel

__all__ = [
    "AnomalousAccessDetector",
    "BruteForceDetector",
    "Detector",
    "InjectionAttackDetector",
    "ThreatDetector",
]


@runtime_checkable
class Detector(Protocol):
    name: str

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        """Return an alert when the event (with what came before) is a threat."""


class ThreatDetector:
    """Base class for custom detectors."""

    name: str = "custom"

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        raise NotImplementedError


class _Cooldown:
    """Remembers which keys alerted recently, so one attack raises one alert."""

    def __init__(self, seconds: float, max_keys: int) -> None:
        self.seconds = seconds
        self._until: BoundedDict[str, float] = BoundedDict(max_keys)

    def ready(self, key: str, now: float) -> bool:
        until = self._until.get(key)
        if until is not None and until > now:
            return False
        self._until[key] = now + self.seconds
        return True


class BruteForceDetector(ThreatDetector):
    """HIGH alert when an IP or a user name reaches ``max_attempts`` failed
    logins within the window (counts come from the login-attempt tracker)."""

    name = "brute_force"

    def __init__(self, max_attempts: int = 5, window: float = 300.0, max_keys: int = 100_000):
        self.max_attempts = max_attempts
        self.window = window
        self._cooldown = _Cooldown(window, max_keys)

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        if event.kind is not EventKind.LOGIN_FAILURE:
            return None
        ip_n = int(event.details.get("ip_failures", 0))
        user_n = int(event.details.get("user_failures", 0))
        username = event.details.get("username")
        ip_hit = ip_n >= self.max_attempts and self._cooldown.ready(
            f"ip:{event.source_ip}", event.timestamp
        )
        user_hit = bool(username) and user_n >= self.max_attempts
        if user_hit:
            # Arm the user's cooldown even when the IP alert fires, so one attack
            # (one IP guessing one user) raises one alert, not two.
            user_hit = self._cooldown.ready(f"user:{username}", event.timestamp)
        if not (ip_hit or user_hit):
            return None
        scope, failures = ("ip", ip_n) if ip_hit else ("user", user_n)
        return SecurityAlert(
            alert_type="brute_force",
            threat_level=ThreatLevel.HIGH,
            message=f"{failures} failed logins for one {'IP' if ip_hit else 'user'} "
            f"within {int(self.window)} s",
            source_ip=event.source_ip,
            user_id=username,
            details={
                "failures": failures,
                "window_seconds": self.window,
                "scope": scope,
                "path": event.path,
            },
            timestamp=event.timestamp,
        )


@dataclass(slots=True)
class _UserProfile:
    ips: dict[str, float] = field(default_factory=dict)
    hours: Counter[int] = field(default_factory=Counter)
    seen: int = 0


class AnomalousAccessDetector(ThreatDetector):
    """MEDIUM alert when a known user appears from a new IP; LOW when a known
    user is active at an hour (UTC) they have never been active at.

    A user is "known" after ``min_history`` events; each profile keeps at most
    ``max_ips_per_user`` addresses and the profiles map is bounded.
    """

    name = "anomalous_access"

    def __init__(
        self,
        *,
        min_history: int = 10,
        hour_min_history: int = 50,
        max_ips_per_user: int = 32,
        max_users: int = 100_000,
    ) -> None:
        self.min_history = min_history
        self.hour_min_history = hour_min_history
        self.max_ips = max_ips_per_user
        self._profiles: BoundedDict[str, _UserProfile] = BoundedDict(max_users)
        self._cooldown = _Cooldown(3600.0, max_users)

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        if event.user_id is None or event.kind not in (EventKind.REQUEST, EventKind.LOGIN_SUCCESS):
            return None
        profile = self._profiles.setdefault(event.user_id, _UserProfile)
        hour = time.gmtime(event.timestamp).tm_hour
        alert: SecurityAlert | None = None
        ip = event.source_ip
        if profile.seen >= self.min_history and ip is not None and ip not in profile.ips:
            if self._cooldown.ready(f"ip:{event.user_id}:{ip}", event.timestamp):
                alert = SecurityAlert(
                    alert_type="anomalous_access",
                    threat_level=ThreatLevel.MEDIUM,
                    message="known user seen from a new IP address",
                    source_ip=ip,
                    user_id=event.user_id,
                    details={"reason": "new_ip", "known_ips": len(profile.ips)},
                    timestamp=event.timestamp,
                )
        elif profile.seen >= self.hour_min_history and profile.hours[hour] == 0:  # noqa: SIM102
            if self._cooldown.ready(f"hour:{event.user_id}:{hour}", event.timestamp):
                alert = SecurityAlert(
                    alert_type="anomalous_access",
                    threat_level=ThreatLevel.LOW,
                    message="known user active at an unusual hour",
                    source_ip=ip,
                    user_id=event.user_id,
                    details={"reason": "unusual_hour", "hour_utc": hour},
                    timestamp=event.timestamp,
                )
        profile.seen += 1
        profile.hours[hour] += 1
        if ip is not None:
            profile.ips[ip] = event.timestamp
            if len(profile.ips) > self.max_ips:
                oldest = min(profile.ips, key=profile.ips.__getitem__)
                del profile.ips[oldest]
        return alert


class InjectionAttackDetector(ThreatDetector):
    """HIGH alert for an injection attempt (CRITICAL when it was not blocked),
    at most one per client IP and family per ``cooldown`` seconds."""

    name = "injection"

    def __init__(self, cooldown: float = 60.0, max_keys: int = 100_000) -> None:
        self._cooldown = _Cooldown(cooldown, max_keys)

    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        if event.kind is not EventKind.INJECTION:
            return None
        families = sorted(event.details.get("families", ()))
        key = f"{event.source_ip}:{','.join(families)}"
        if not self._cooldown.ready(key, event.timestamp):
            return None
        blocked = bool(event.details.get("blocked"))
        return SecurityAlert(
            alert_type="injection_attack",
            threat_level=ThreatLevel.HIGH if blocked else ThreatLevel.CRITICAL,
            message=f"{'/'.join(families) or 'injection'} attempt "
            + ("blocked" if blocked else "detected (not blocked)"),
            source_ip=event.source_ip,
            user_id=event.user_id,
            details={
                "families": families,
                "blocked": blocked,
                "score": event.details.get("score"),
                "findings": list(event.details.get("findings", ())),
                "path": event.path,
                "method": event.method,
                "request_id": event.request_id,
            },
            timestamp=event.timestamp,
        )
