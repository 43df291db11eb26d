"""Device fingerprint and sign-in risk score.

The fingerprint hashes stable request traits (user-agent family, Accept-*
headers, client hints, and a device cookie the client keeps); it is a
"have I seen this browser" signal, not an identifier strong enough to track
anyone. The score adds points per reason:

==================  ======  ===============================================
reason              points  when
==================  ======  ===============================================
new_device          25      fingerprint not seen for this user (90 days)
new_network         15      IPv4 /24 or IPv6 /48 not seen for this user
unusual_hour        10      UTC hour (±1) never seen in >= 5 past sign-ins
recent_failures     10 each failed attempts in the lockout window (max 30)
impossible_travel   70      speed since the last sign-in > 1000 km/h (GeoIP)
unusual_behaviour   20      the user's recent requests scored at or below
                            ``ANOMALY_ALERT_SCORE`` (behavioural detection on)
==================  ======  ===============================================

Policy: below ``medium`` passes, from ``medium`` a second factor is required,
from ``high`` the sign-in is refused and an alert raised. The reasons are
returned, logged and sent with the event, so decisions can be explained.

References: NIST SP 800-63B 5.2.2 / OWASP ASVS V2 (risk-based step-up);
MaxMind GeoIP2 City (``.mmdb``) format.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.storage.base import FailurePolicy, Store

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "GeoPoint",
    "RiskAssessment",
    "RiskEngine",
    "RiskLevel",
    "device_fingerprint",
    "maxmind_lookup",
    "user_agent_family",
]

log = get_logger(__name__)

RISK_STORE_FAILED = "risk_store_failed"
HISTORY_SECONDS = 90 * 86_400
DEVICE_COOKIE = "pns_device"
_FINGERPRINT_HEADERS = (
    "accept-language",
    "accept-encoding",
    "sec-ch-ua",
    "sec-ch-ua-platform",
    "sec-ch-ua-mobile",
)
_UA_PATTERNS = (  # order matters: Edge and Opera also say "Chrome", Chrome says "Safari"
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"Firefox/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+).*Safari/")),
    ("curl", re.compile(r"curl/(\d+)")),
    ("python", re.compile(r"python-(?:requests|httpx)/(\d+)")),
)
_OS_PATTERNS = (
    ("Android", "Android"),
    ("iOS", "iPhone"),
    ("iOS", "iPad"),
    ("Windows", "Windows"),
    ("macOS", "Mac OS X"),
    ("Linux", "Linux"),
)


def user_agent_family(user_agent: str | None) -> str:
    """``"Firefox 128 / Linux"``-style family: stable across patch updates."""
    ua = (user_agent or "")[:512]
    browser = "other"
    for name, pattern in _UA_PATTERNS:
        match = pattern.search(ua)
        if match:
            browser = f"{name} {match.group(1)}"
            break
    system = next((name for name, marker in _OS_PATTERNS if marker in ua), "other")
    return f"{browser} / {system}"


def device_fingerprint(headers: Mapping[str, str], device_cookie: str | None = None) -> str:
    """A SHA-256 over the stable traits of a request (lower-case header names)."""
    parts = [user_agent_family(headers.get("user-agent"))]
    parts += [headers.get(name, "")[:256] for name in _FINGERPRINT_HEADERS]
    parts.append((device_cookie or "")[:128])
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    score: int
    level: RiskLevel
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "level": self.level.value, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class GeoPoint:
    latitude: float
    longitude: float


GeoLookup = Callable[[str], GeoPoint | None]


def _km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance (haversine), Earth radius 6371 km."""
    p1, p2 = math.radians(a.latitude), math.radians(b.latitude)
    dp, dl = p2 - p1, math.radians(b.longitude - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def maxmind_lookup(path: str) -> GeoLookup:
    """A lookup over a MaxMind City database (needs the ``geoip`` extra: maxminddb)."""
    try:
        maxminddb = importlib.import_module("maxminddb")  # optional extra, untyped
    except ImportError as exc:
        raise ConfigurationError(
            "geoip_db_path is set but maxminddb is not installed; "
            "pip install 'pynomaly-security[geoip]'"
        ) from exc
    try:
        reader = maxminddb.open_database(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot open GeoIP database {path!r}: {exc}") from exc

    def lookup(ip: str) -> GeoPoint | None:
        try:
            record = reader.get(ip)
        except ValueError:
            return None
        location = record.get("location") if isinstance(record, dict) else None
        if not isinstance(location, dict) or "latitude" not in location:
            return None
        return GeoPoint(float(location["latitude"]), float(location["longitude"]))

    return lookup


def _network(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class RiskEngine:
    """Score sign-ins from the user's history in the shared store.

    Args:
        store: where known devices, networks, hours and the last location live.
        medium, high: score thresholds.
        geo_lookup: IP -> location; enables impossible travel (see
            :func:`maxmind_lookup`).
        max_speed_kmh: faster than this between two sign-ins is impossible.
        clock: seconds since the epoch.
        failure_policy: ``fail_open`` scores without history when the store is
            down; ``fail_closed`` treats the sign-in as high risk.
    """

    def __init__(
        self,
        store: Store,
        *,
        medium: int = 30,
        high: int = 70,
        geo_lookup: GeoLookup | None = None,
        max_speed_kmh: float = 1000.0,
        clock: Callable[[], float] = time.time,
        failure_policy: FailurePolicy = "fail_open",
    ) -> None:
        if not 0 < medium < high:
            raise ConfigurationError(f"need 0 < risk medium ({medium}) < high ({high})")
        self._store = store
        self.medium = medium
        self.high = high
        self._geo = geo_lookup
        self._max_speed = max_speed_kmh
        self._clock = clock
        self._policy = failure_policy
        self.behaviour: Callable[[str], Mapping[str, Any] | None] | None = None
        """A user's recent behaviour (``AnomalyEngine.behaviour``, issue 22); set by
        ``install_authenticator`` when the app's stack runs behavioural detection."""
        self.behaviour_score = 30

    @classmethod
    def from_settings(cls, settings: SecuritySettings, store: Store, **kwargs: Any) -> RiskEngine:
        from pynomaly_security.storage.base import failure_policy

        geo = maxmind_lookup(settings.geoip_db_path) if settings.geoip_db_path else None
        kwargs.setdefault("geo_lookup", geo)
        return cls(
            store,
            medium=settings.risk_medium_threshold,
            high=settings.risk_high_threshold,
            failure_policy=failure_policy(settings.store_failure_policy, "risk"),
            **kwargs,
        )

    def level(self, score: int) -> RiskLevel:
        if score >= self.high:
            return RiskLevel.HIGH
        return RiskLevel.MEDIUM if score >= self.medium else RiskLevel.LOW

    async def assess(
        self, user_id: str, ip: str | None, fingerprint: str, recent_failures: int = 0
    ) -> RiskAssessment:
        """Score a sign-in attempt whose password was right."""
        try:
            reasons = await self._reasons(user_id, ip or "unknown", fingerprint)
        except StorageError as exc:
            log.warning(RISK_STORE_FAILED, policy=self._policy, error=str(exc))
            if self._policy == "fail_closed":
                return RiskAssessment(self.high, RiskLevel.HIGH, ("risk_unavailable",))
            reasons = {}
        if recent_failures > 0:
            reasons["recent_failures"] = min(30, 10 * recent_failures)
        if self.behaviour is not None:
            recent = self.behaviour(user_id)
            if recent is not None and recent.get("low_score", 99) <= self.behaviour_score:
                reasons["unusual_behaviour"] = 20
        score = sum(reasons.values())
        return RiskAssessment(score, self.level(score), tuple(reasons))

    async def _reasons(self, user_id: str, ip: str, fingerprint: str) -> dict[str, int]:
        reasons: dict[str, int] = {}
        logins = await self._store.get_count(f"risk:logins:{user_id}")
        if logins == 0:
            return reasons  # first sign-in: nothing to compare with
        if not await self._store.has_member(f"risk:dev:{user_id}", fingerprint, HISTORY_SECONDS):
            reasons["new_device"] = 25
        if not await self._store.has_member(f"risk:net:{user_id}", _network(ip), HISTORY_SECONDS):
            reasons["new_network"] = 15
        if logins >= 5:
            hour = time.gmtime(self._clock()).tm_hour
            seen = [
                await self._store.has_member(f"risk:hour:{user_id}", str(h % 24), HISTORY_SECONDS)
                for h in (hour - 1, hour, hour + 1)
            ]
            if not any(seen):
                reasons["unusual_hour"] = 10
        if self._geo is not None and (here := self._geo(ip)) is not None:
            last = await self._store.get(f"risk:geo:{user_id}")
            if last is not None:
                data = json.loads(last)
                hours = max((self._clock() - float(data["t"])) / 3600, 1 / 60)
                distance = _km(GeoPoint(data["lat"], data["lon"]), here)
                if distance / hours > self._max_speed:
                    reasons["impossible_travel"] = 70
        return reasons

    async def remember(self, user_id: str, ip: str | None, fingerprint: str) -> None:
        """Learn from a successful sign-in (device, network, hour, location)."""
        ip = ip or "unknown"
        now = self._clock()
        try:
            await self._store.incr(f"risk:logins:{user_id}", HISTORY_SECONDS)
            await self._store.add_member(f"risk:dev:{user_id}", fingerprint, HISTORY_SECONDS)
            await self._store.add_member(f"risk:net:{user_id}", _network(ip), HISTORY_SECONDS)
            hour = str(time.gmtime(now).tm_hour)
            await self._store.add_member(f"risk:hour:{user_id}", hour, HISTORY_SECONDS)
            if self._geo is not None and (here := self._geo(ip)) is not None:
                value = json.dumps({"lat": here.latitude, "lon": here.longitude, "t": now})
                await self._store.put(f"risk:geo:{user_id}", value, HISTORY_SECONDS)
        except StorageError as exc:
            log.warning(RISK_STORE_FAILED, policy=self._policy, error=str(exc))
