"""The conditions a rule may carry, and how each is checked against a request.

Every condition is a typed pydantic model, validated when a policy is loaded (a bad
time zone, CIDR or time names its rule and field then, not at the first request).
A :class:`Conditions` block holds when all of its parts hold; a part left out does
not constrain. Checking returns the name of the first part that failed (``None``:
all held), so a decision can say which condition decided.

Time is read in the window's own zone through :mod:`zoneinfo`: a window "09:00-18:00
Europe/Paris" follows the wall clock across DST changes, and a window whose end is
not after its start ("22:00-06:00") runs across midnight, its days naming the day it
starts on.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "Conditions",
    "DateRange",
    "Principal",
    "RequestFacts",
    "Resource",
    "ResourceCondition",
    "TimeWindow",
    "UserCondition",
]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_ITEMS = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: an id plus what rules may name (``role:``, ``group:``, ...)."""

    id: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    tenant: str | None = None
    api_key: str | None = None
    """The key's id (never the key itself)."""
    mfa: bool = False
    risk: float = 0.0
    device_known: bool = False

    def names(self) -> frozenset[str]:
        """Every name a rule's ``principals`` may match (``user:<id>``, ``role:<r>``...)."""
        found = {f"user:{self.id}", *(f"role:{r}" for r in self.roles)}
        found.update(f"group:{g}" for g in self.groups)
        if self.tenant is not None:
            found.add(f"tenant:{self.tenant}")
        if self.api_key is not None:
            found.add(f"api_key:{self.api_key}")
        return frozenset(found)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on: a route (template or path), a type and id, attributes."""

    path: str | None = None
    type: str | None = None
    id: str | None = None
    owner: str | None = None
    classification: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """The request's side of a decision."""

    now: float
    """Seconds since the epoch (the engine's clock; frozen in tests)."""
    ip: str | None = None
    method: str | None = None
    headers: frozenset[str] = field(default_factory=frozenset)
    """Lower-case names of the headers present (never their values)."""
    request_id: str | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _minutes(text: str) -> int:
    try:
        hour, minute = text.split(":")
        h, m = int(hour), int(minute)
    except ValueError:
        raise ValueError(f"{text!r} is not HH:MM") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(f"{text!r} is not a time of day")
    return h * 60 + m


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class TimeWindow(_Strict):
    """Hours on some days in a time zone; across midnight when ``end`` <= ``start``."""

    start: str = "00:00"
    end: str = "24:00"
    days: list[Day] = Field(default_factory=lambda: list(_DAYS))
    tz: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        _minutes(value)
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    def holds(self, now: float) -> bool:
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        start, end = _minutes(self.start), _minutes(self.end)
        day = _DAYS[local.weekday()]
        if start < end:
            return day in self.days and start <= minute < end
        # Across midnight: the evening part on a listed day, the morning part on
        # the day after a listed day.
        yesterday = _DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and minute >= start) or (yesterday in self.days and minute < end)


class DateRange(_Strict):
    """Calendar dates (inclusive) in a time zone."""

    start: dt.date | None = None
    end: dt.date | None = None
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        return self

    def holds(self, now: float) -> bool:
        today = dt.datetime.fromtimestamp(now, ZoneInfo(self.tz)).date()
        return (self.start is None or today >= self.start) and (
            self.end is None or today <= self.end
        )


class UserCondition(_Strict):
    """The principal's attributes: any of ``roles``; MFA used; risk at most; known device."""

    roles: list[str] | None = Field(None, max_length=_MAX_ITEMS)
    mfa: bool | None = None
    max_risk: float | None = Field(None, ge=0)
    device_known: bool | None = None

    def failed(self, p: Principal) -> str | None:
        if self.roles is not None and p.roles.isdisjoint(self.roles):
            return "user.roles"
        if self.mfa is not None and p.mfa != self.mfa:
            return "user.mfa"
        if self.max_risk is not None and p.risk > self.max_risk:
            return "user.max_risk"
        if self.device_known is not None and p.device_known != self.device_known:
            return "user.device_known"
        return None


class ResourceCondition(_Strict):
    """The resource's attributes: owned by the principal; one of the classifications."""

    owner_is_principal: bool | None = None
    classification: list[str] | None = Field(None, max_length=_MAX_ITEMS)

    def failed(self, p: Principal, r: Resource) -> str | None:
        if self.owner_is_principal is not None and (r.owner == p.id) != self.owner_is_principal:
            return "resource.owner_is_principal"
        if self.classification is not None and r.classification not in self.classification:
            return "resource.classification"
        return None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def client_address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, an IPv4-mapped IPv6 one (``::ffff:10.0.0.1``) read as IPv4: a
    dual-stack listener reports IPv4 clients so, and a rule on ``10.0.0.0/8`` must
    hold for them."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Conditions(_Strict):
    """Every part given must hold."""

    time: TimeWindow | None = None
    dates: DateRange | None = None
    ip: list[str] | None = Field(None, min_length=1, max_length=_MAX_ITEMS)
    """CIDRs (or addresses), IPv4 or IPv6; the client's address in any of them."""
    user: UserCondition | None = None
    resource: ResourceCondition | None = None
    methods: list[str] | None = Field(None, min_length=1, max_length=16)
    headers_present: list[str] | None = Field(None, min_length=1, max_length=32)

    @field_validator("ip")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for item in value:
                try:
                    _network(item)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [m.upper() for m in value]

    @field_validator("headers_present")
    @classmethod
    def _lower(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [h.lower() for h in value]

    _nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = PrivateAttr(None)

    def model_post_init(self, context: object) -> None:
        # Parsed once: a decision compares addresses, it never parses a CIDR.
        self._nets = tuple(_network(c) for c in self.ip) if self.ip is not None else None

    def failed(self, p: Principal, r: Resource, q: RequestFacts) -> str | None:
        """The first part that does not hold (its field name), or None."""
        if self.time is not None and not self.time.holds(q.now):
            return "time"
        if self.dates is not None and not self.dates.holds(q.now):
            return "dates"
        nets = self._nets
        if nets is not None:
            address = client_address(q.ip)
            if address is None or not any(address in n for n in nets):
                return "ip"  # no address: an IP rule cannot hold (fail closed)
        if self.user is not None and (why := self.user.failed(p)) is not None:
            return why
        if self.resource is not None and (why := self.resource.failed(p, r)) is not None:
            return why
        if self.methods is not None and (q.method or "").upper() not in self.methods:
            return "methods"
        if self.headers_present is not None and not q.headers.issuperset(self.headers_present):
            return "headers_present"
        return None
