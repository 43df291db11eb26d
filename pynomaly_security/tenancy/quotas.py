"""Per-tenant quotas (issue 21, item 5): rate, requests in flight, a daily budget.

Counted in the shared store through the tenant-scoped view (so every worker
counts together, and one tenant's counters cannot be another's), the rate with
``limits``' sliding-window counter like the rate limiter. A refusal is ``429``
with the IETF ``RateLimit-Policy`` / ``RateLimit`` fields naming the tenant's
policy (``"tenant-free-rate"``), ``Retry-After``, and a monitor alert at most once
per tenant and minute (``tenant_quota_exceeded``).

References: draft-ietf-httpapi-ratelimit-headers; RFC 6585 (429); RFC 9110 (Retry-After).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pynomaly_security.storage._limits import LimitsStorageAdapter
from pynomaly_security.storage.base import Store
from pynomaly_security.tenancy.model import Plan

__all__ = ["QuotaVerdict", "Quotas"]

_DAY = "quota:day:"
_INFLIGHT = "quota:inflight"
_REFUSED = "quota:refused:"
_ALERTED = "quota:alerted"
# A worker that dies mid-request never gives its slot back: the in-flight counter
# restarts from zero at most this often, so a lost slot is not lost forever.
_INFLIGHT_TTL = 300.0


@dataclass(frozen=True, slots=True)
class QuotaVerdict:
    allowed: bool
    headers: dict[str, str]
    which: str = ""
    """The policy that refused (``rate``, ``concurrent``, ``daily``)."""
    holds_slot: bool = False
    """A slot of the concurrency quota was taken: :meth:`Quotas.release` it."""


def _day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


class Quotas:
    """The quotas of a tenant's plan, on the tenant-scoped store.

    Args:
        store: a :class:`~pynomaly_security.tenancy.scoped.TenantScopedStore`
            (every key lands in the running tenant's namespace).
        alert: called with ``(tenant_id, which)`` on a refusal, at most once a minute
            per tenant (the monitor's alert).
    """

    def __init__(
        self,
        store: Store,
        *,
        alert: Callable[[str, str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._limiter = SlidingWindowCounterRateLimiter(LimitsStorageAdapter(store))
        self.alert = alert
        self._clock = clock
        self._parsed: dict[tuple[str, ...], tuple[RateLimitItem, ...]] = {}

    def _items(self, specs: tuple[str, ...]) -> tuple[RateLimitItem, ...]:
        found = self._parsed.get(specs)
        if found is None:
            found = tuple(item for spec in specs for item in parse_many(spec))
            if len(self._parsed) < 256:  # plans are few; overrides are bounded per tenant
                self._parsed[specs] = found
        return found

    @staticmethod
    def active(plan: Plan, extra: list[str]) -> bool:
        return bool(plan.rate or extra or plan.concurrent or plan.daily)

    async def acquire(
        self, tenant_id: str, plan_name: str, plan: Plan, extra: list[str]
    ) -> QuotaVerdict:
        """Count one request of the running tenant; refuse past any quota."""
        policy = f"tenant-{plan_name}"
        headers: dict[str, str] = {}
        items = self._items((*plan.rate, *extra))
        if items:
            allowed, remaining, reset_in = True, math.inf, 1
            for item in items:
                if allowed and not await self._limiter.hit(item, "tenant"):
                    allowed = False
                stats = await self._limiter.get_window_stats(item, "tenant")
                if stats.remaining < remaining:
                    remaining = stats.remaining
                    reset_in = max(1, math.ceil(stats.reset_time - self._clock()))
            headers["RateLimit-Policy"] = ", ".join(
                f'"{policy}-rate";q={i.amount};w={i.get_expiry()}' for i in items
            )
            left = 0 if not allowed else int(remaining)
            headers["RateLimit"] = f'"{policy}-rate";r={left};t={reset_in}'
            if not allowed:
                return await self._refuse(tenant_id, "rate", headers, reset_in)
        if plan.daily:
            now = self._clock()
            used = await self.store.incr(_DAY + _day(now), 90_000)
            if used > plan.daily:
                reset_in = max(1, int(86_400 - now % 86_400))
                headers["RateLimit-Policy"] = f'"{policy}-daily";q={plan.daily};w=86400'
                headers["RateLimit"] = f'"{policy}-daily";r=0;t={reset_in}'
                return await self._refuse(tenant_id, "daily", headers, reset_in)
        if plan.concurrent:
            inflight = await self.store.incr(_INFLIGHT, _INFLIGHT_TTL)
            if inflight > plan.concurrent:
                await self.store.incr(_INFLIGHT, _INFLIGHT_TTL, -1)
                headers["RateLimit-Policy"] = f'"{policy}-concurrent";q={plan.concurrent}'
                headers["RateLimit"] = f'"{policy}-concurrent";r=0;t=1'
                return await self._refuse(tenant_id, "concurrent", headers, 1)
            return QuotaVerdict(True, headers, holds_slot=True)
        return QuotaVerdict(True, headers)

    async def release(self) -> None:
        await self.store.incr(_INFLIGHT, _INFLIGHT_TTL, -1)

    async def _refuse(
        self, tenant_id: str, which: str, headers: dict[str, str], retry: int
    ) -> QuotaVerdict:
        headers["Retry-After"] = str(retry)
        await self.store.incr(_REFUSED + _day(self._clock()), 90_000)
        if self.alert is not None and await self.store.add(_ALERTED, which, 60):
            await self.alert(tenant_id, which)
        return QuotaVerdict(False, headers, which)

    async def usage(self, plan_name: str, plan: Plan, extra: list[str]) -> dict[str, Any]:
        """The running tenant's counters (the admin API's ``/usage``)."""
        day = _day(self._clock())
        rate = []
        for item in self._items((*plan.rate, *extra)):
            stats = await self._limiter.get_window_stats(item, "tenant")
            rate.append(
                {"limit": str(item), "remaining": stats.remaining, "reset": stats.reset_time}
            )
        return {
            "plan": plan_name,
            "quotas": plan.model_dump(),
            "extra_rate_limits": list(extra),
            "rate": rate,
            "today": {
                "requests": await self.store.get_count(_DAY + day),
                "refused": await self.store.get_count(_REFUSED + day),
                "daily_budget": plan.daily,
            },
            "in_flight": max(0, await self.store.get_count(_INFLIGHT)),
        }
