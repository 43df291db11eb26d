"""The ``tenancy`` section of the settings: ``PYNOMALY_SECURITY__TENANCY_<NAME>``.

Off by default: with ``TENANCY_ENABLED`` false nothing of this package is built
and no layer is added to the request path.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from pynomaly_security.tenancy.model import Plan

__all__ = ["DEFAULT_PLANS", "TenancySection"]

Source = Literal["claim", "header", "subdomain", "path"]

# Plain data (the settings validate it into Plan objects): .env.example prints it as JSON.
DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    "free": {"rate": ["120/minute"], "concurrent": 10, "daily": 20_000},
    "pro": {"rate": ["1200/minute"], "concurrent": 100, "daily": 1_000_000},
}


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [p.strip() for p in text.split(",") if p.strip()]
    return value


class TenancySection(BaseModel):
    """Secure multi-tenancy (issue 21): how a request's tenant is found and bounded."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    enabled: bool = False
    """Resolve a tenant for every request and keep each tenant's security state apart."""
    sources: Annotated[list[Source], NoDecode] = Field(default=["claim", "header"])
    """Where the tenant is read, in order (``claim``, ``header``, ``subdomain``,
    ``path``); the first that names one wins, and every other that names one must
    agree (a token for tenant A with ``X-Tenant: B`` is refused 403)."""
    header: str = "X-Tenant"
    """The header of the ``header`` source."""
    claim: str = "tid"
    """The access token claim of the ``claim`` source (set when a session starts)."""
    base_domain: str | None = None
    """``subdomain`` source: tenants are ``<id>.<base_domain>``."""
    path_prefix: str = "/t/"
    """``path`` source: ``/t/<id>/rest`` is served as ``/rest`` for tenant ``<id>``."""
    exempt_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/api/security", "/health", "/docs", "/openapi.json"]
    )
    """Path prefixes served for the platform (no tenant): the platform admin API."""
    plans: dict[str, Plan] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_PLANS.items()},
        validate_default=True,
    )
    """Quota tiers, JSON: ``{"free": {"rate": ["120/minute"], "concurrent": 10,
    "daily": 20000}}``."""
    default_plan: str = "free"
    cache_seconds: float = Field(default=2.0, ge=0)
    """How long a worker trusts its copy of a tenant (suspension reaches every
    worker within this)."""
    max_tenants: int = Field(default=10_000, ge=1)
    """Tenants a worker keeps in memory (bounded; the registry holds all)."""

    @field_validator("sources", "exempt_paths", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("plans", mode="before")
    @classmethod
    def _plans_json(cls, value: Any) -> Any:
        # A section's flat environment name hands its value over as text.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("sources")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("sources: at least one, each once")
        return value

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")):
            raise ValueError("path_prefix starts and ends with '/'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TenancySection:
        # Caught at start-up, not on the first request that needs them.
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        if "subdomain" in self.sources and not self.base_domain:
            raise ValueError("the subdomain source needs base_domain")
        return self

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.plans.get(self.default_plan) or Plan()
