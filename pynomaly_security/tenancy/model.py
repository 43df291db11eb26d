"""Tenants, their plans, and their overrides that may only narrow the global settings.

A tenant id is a DNS label (``[a-z0-9-]``, 1-63 characters): it appears in host
names (the subdomain source), paths, SQL session settings and file names, and a
narrow alphabet keeps each of those trivially safe. The key encoding
(``tenancy/context.py``) does not rely on it: it is injective for any string.

Overrides (issue 21, item 4) are checked when they are set, against the global
settings in force: a tenant may make itself stricter (fewer login attempts,
shorter tokens, a higher detection level, MFA required, an IP allow list, lower
extra rate limits), never looser; a loosening override is a 422 naming the field,
not silently clamped.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "TENANT_ID",
    "Plan",
    "Tenant",
    "TenantOverrides",
    "check_narrowing",
    "valid_tenant_id",
]

TENANT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TenantStatus = Literal["active", "suspended"]


def valid_tenant_id(value: str) -> bool:
    return TENANT_ID.fullmatch(value) is not None


class Plan(BaseModel):
    """A quota tier (``TENANCY_PLANS``): what one tenant on it may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: list[str] = Field(default_factory=list)
    """Request rate limits (``limits`` strings, ``"600/minute"``), per tenant, all workers."""
    concurrent: int | None = Field(default=None, ge=1)
    """Requests in flight at once, across workers."""
    daily: int | None = Field(default=None, ge=1)
    """Requests per UTC day."""

    @field_validator("rate")
    @classmethod
    def _specs(cls, value: list[str]) -> list[str]:
        from limits import parse_many

        for spec in value:
            try:
                parse_many(spec)
            except ValueError:
                raise ValueError(f"{spec!r} is not a rate limit (e.g. '600/minute')") from None
        return value


class TenantOverrides(BaseModel):
    """What a tenant may set for itself; every field only narrows (None: the global value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brute_force_max_attempts: int | None = Field(default=None, ge=1)
    account_max_attempts: int | None = Field(default=None, ge=1)
    access_token_ttl: int | None = Field(default=None, ge=1)
    refresh_token_ttl: int | None = Field(default=None, ge=1)
    detection_level: int | None = Field(default=None, ge=1, le=4)
    mfa_required: bool = False
    """True: the tenant's users must use a second factor (False changes nothing)."""
    allowed_ip_ranges: list[str] = Field(default_factory=list, max_length=256)
    """Client networks the tenant's requests may come from (empty: any); refused 403."""
    rate_limits: list[str] = Field(default_factory=list, max_length=8)
    """Extra limits on top of the plan's (more limits only ever narrow)."""

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network") from None
        return value

    @field_validator("rate_limits")
    @classmethod
    def _limits(cls, value: list[str]) -> list[str]:
        Plan(rate=value)  # the same parse
        return value


# field -> (global setting, the direction that is stricter: "lower" or "higher")
_NARROWING: dict[str, tuple[str, Literal["lower", "higher"]]] = {
    "brute_force_max_attempts": ("brute_force_max_attempts", "lower"),
    "account_max_attempts": ("account_max_attempts", "lower"),
    "access_token_ttl": ("access_token_ttl", "lower"),
    "refresh_token_ttl": ("refresh_token_ttl", "lower"),
    "detection_level": ("detection_level", "higher"),
}


def check_narrowing(overrides: TenantOverrides, settings: SecuritySettings) -> list[str]:
    """The fields of ``overrides`` that would loosen ``settings`` (empty: all narrow)."""
    wrong: list[str] = []
    for name, (setting, stricter) in _NARROWING.items():
        mine = getattr(overrides, name)
        if mine is None:
            continue
        ours = getattr(settings, setting)
        if (stricter == "lower" and mine > ours) or (stricter == "higher" and mine < ours):
            word = "above" if stricter == "lower" else "below"
            wrong.append(f"{name}={mine} is {word} the global {ours}: overrides may only narrow")
    return wrong


class Tenant(BaseModel):
    """One tenant as the registry keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str = Field(default="", max_length=200)
    status: TenantStatus = "active"
    plan: str = "free"
    overrides: TenantOverrides = Field(default_factory=TenantOverrides)
    created: float = 0.0
    admin_key_hash: str | None = None
    """SHA-256 of the tenant admin's key (hex), never the key: shown once at creation."""
    database_url: str | None = None
    """This tenant's own database (physical isolation), else the template's or shared."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not valid_tenant_id(value):
            raise ValueError("a tenant id is a DNS label: [a-z0-9-], 1-63 characters")
        return value

    def public(self) -> dict[str, Any]:
        """The tenant as the admin API shows it (no key hash)."""
        return self.model_dump(exclude={"admin_key_hash"})
