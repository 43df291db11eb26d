"""A decision: what the middleware does to requests matching a scope and a value.

CrowdSec's bouncer model, in process (issue 16, item 3): ``(scope, value, action,
origin, reason, created_at, expires_at)``. The id is derived from scope, value,
action and origin, so making the same decision twice (a playbook step run again,
two workers reacting to one attack) names one decision, which is extended.

Values are normalized when a decision is made, so the middleware's lookup is one
dict lookup: an address as :mod:`ipaddress` prints it, a CIDR as its network, an
API key as the SHA-256 hex of the key (a decision never holds a credential).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_REASON",
    "MAX_VALUE",
    "Decision",
    "DecisionAction",
    "DecisionScope",
    "api_key_fingerprint",
    "decision_id",
    "is_decision_id",
    "normalize_value",
    "parse_duration",
    "valid_origin",
]

MAX_VALUE = 256
MAX_REASON = 500
_ORIGIN = re.compile(r"(manual|(correlation|playbook|intel):[A-Za-z0-9_.\-]{1,64})")
_ID = re.compile(r"dec-[0-9a-f]{24}")


class DecisionScope(StrEnum):
    IP = "ip"
    CIDR = "cidr"
    USER = "user"
    SESSION = "session"
    API_KEY = "api_key"
    ROUTE = "route"
    TENANT = "tenant"


class DecisionAction(StrEnum):
    BAN = "ban"
    """403 for every request."""
    THROTTLE = "throttle"
    """429 with ``Retry-After`` beyond ``DECISION_THROTTLE_PER_MINUTE``."""
    REQUIRE_MFA = "require_mfa"
    """401 with RFC 9470's challenge unless the request shows MFA."""
    RAISE_DETECTION_LEVEL = "raise_detection_level"
    """Inspected at the paranoid level, never from the memory of clean requests."""
    READ_ONLY = "read_only"
    """403 for unsafe methods (RFC 9110 section 9.2.1)."""


def api_key_fingerprint(key: str) -> str:
    """What an ``api_key`` decision holds for a key: its SHA-256 hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def valid_origin(origin: str) -> bool:
    """``manual``, ``correlation:<rule>``, ``playbook:<name>`` or ``intel:<list>``."""
    return _ORIGIN.fullmatch(origin) is not None


def normalize_value(scope: DecisionScope, value: str) -> str:
    """The value as the middleware looks it up; ValueError (with the reason) if it is
    not one of ``scope``."""
    value = value.strip()
    if not value or len(value) > MAX_VALUE:
        raise ValueError(f"a {scope.value} value must be 1..{MAX_VALUE} characters")
    if scope is DecisionScope.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
    if scope is DecisionScope.CIDR:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR network") from None
    if scope is DecisionScope.ROUTE and not value.startswith("/"):
        raise ValueError("a route value is a path starting with '/'")
    if scope is DecisionScope.API_KEY and re.fullmatch(r"[0-9a-f]{64}", value) is None:
        raise ValueError("an api_key value is the key's SHA-256 hex, never the key")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"a {scope.value} value must not hold control characters")
    return value


_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> float:
    """Seconds of ``90``, ``90s``, ``15m``, ``24h`` or ``7d``; ValueError otherwise."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 24h or 7d")
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def decision_id(
    scope: DecisionScope,
    value: str,
    action: DecisionAction,
    origin: str,
    tenant: str | None = None,
) -> str:
    """The id of a decision: the same for the same scope, value, action, origin and
    tenant (two tenants banning one address make two decisions)."""
    text = f"{scope}\0{value}\0{action}\0{origin}"
    if tenant is not None:  # a platform decision keeps the id it had before tenancy
        text += f"\0tenant\0{tenant}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return "dec-" + digest[:24]


def is_decision_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


@dataclass(slots=True)
class Decision:
    """One decision (see the module docstring).

    Args:
        repeats: how many decisions on this value preceded it in the escalation
            window (its duration doubled that many times, capped).
        actor: who made it (``system`` for automatic origins).
        tenant: the tenant it was made in, whose requests only it applies to (issue
            21); None: the platform's, applying to every tenant's requests.
    """

    scope: DecisionScope
    value: str
    action: DecisionAction
    origin: str
    reason: str
    created_at: float
    expires_at: float
    repeats: int = 0
    actor: str = "system"
    decision_id: str = ""
    tenant: str | None = None

    def __post_init__(self) -> None:
        if not self.decision_id:
            self.decision_id = decision_id(
                self.scope, self.value, self.action, self.origin, self.tenant
            )

    def applies_to(self, tenant: str | None) -> bool:
        """Whether it applies to a request of ``tenant`` (a platform decision: to all)."""
        return self.tenant is None or self.tenant == tenant

    def live(self, now: float) -> bool:
        return self.expires_at > now

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scope"] = self.scope.value
        out["action"] = self.action.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(
            scope=DecisionScope(data["scope"]),
            value=str(data["value"]),
            action=DecisionAction(data["action"]),
            origin=str(data["origin"]),
            reason=str(data.get("reason", "")),
            created_at=float(data["created_at"]),
            expires_at=float(data["expires_at"]),
            repeats=int(data.get("repeats", 0)),
            actor=str(data.get("actor", "system")),
            decision_id=str(data.get("decision_id", "")),
            tenant=data.get("tenant"),
        )
