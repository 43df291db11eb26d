"""Per-route rate limits declared in code, as a FastAPI dependency.

The middleware takes limits from the settings (default and per path); this is
the same sliding-window counter for limits that belong next to the route::

    @app.post("/password-reset", dependencies=[Depends(RouteRateLimit("3/hour"))])

It counts in the stack's shared store (``app.state.pynomaly_security.store``)
unless given one, keyed by client IP (or by the signed-in user with
``key="user"``, or by the bearer token's subject with ``key="account"``),
separately per route. A refused request is ``429`` with ``Retry-After`` and the
IETF ``RateLimit`` fields.

:class:`KeyedLimits` is the counting itself, for the ASGI layers that limit
before any route runs (the login guard counts per IP and per account name).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Literal

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.storage._limits import LimitsStorageAdapter
from pynomaly_security.storage.base import FailurePolicy, Store

__all__ = ["KeyedLimits", "RouteRateLimit"]

RouteKey = Literal["ip", "user", "account"]


def _parse(limit: str | Sequence[str]) -> tuple[RateLimitItem, ...]:
    specs = [limit] if isinstance(limit, str) else list(limit)
    items: list[RateLimitItem] = []
    for spec in specs:
        try:
            items.extend(parse_many(spec))
        except ValueError as exc:
            raise ConfigurationError(f"{spec!r} is not a rate limit (e.g. '5/minute')") from exc
    return tuple(items)


class KeyedLimits:
    """Sliding-window limits (limits' counter strategy) counted in one :class:`Store`.

    Args:
        limit: ``limits`` notation, one string (``;``-separated) or several.
        store: where to count.
    """

    def __init__(self, limit: str | Sequence[str], store: Store) -> None:
        self.items = _parse(limit)
        self._limiter = SlidingWindowCounterRateLimiter(LimitsStorageAdapter(store))

    async def hit(self, scope_name: str, who: str) -> dict[str, str] | None:
        """Count one request of ``who`` under ``scope_name``; the 429 headers when
        a limit is passed (the others are then not charged), else None.

        Raises:
            StorageError: the store failed (the caller applies its failure policy).
        """
        for item in self.items:
            if not await self._limiter.hit(item, "route-limit", scope_name, who):
                stats = await self._limiter.get_window_stats(item, "route-limit", scope_name, who)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                name = f"{item.amount}-per-{item.multiples}-{item.GRANULARITY.name}"
                return {
                    "Retry-After": str(retry),
                    "RateLimit-Policy": f'"{name}";q={item.amount};w={item.get_expiry()}',
                    "RateLimit": f'"{name}";r=0;t={retry}',
                }
        return None


def _bearer_subject(request: Request) -> str | None:
    """The ``sub`` of the request's bearer token, read by the installed
    authenticator (signature and claims; no store round trip)."""
    authenticator = getattr(request.app.state, "pynomaly_auth", None)
    reader = getattr(authenticator, "user_id_from_scope", None)
    if not callable(reader):
        return None
    subject = reader(request.scope)
    return subject if isinstance(subject, str) else None


class RouteRateLimit:
    """A FastAPI dependency enforcing ``limit`` on the route it decorates.

    Args:
        limit: ``limits`` notation, several separated by ``;`` (``"3/minute;20/hour"``),
            or a list of them.
        key: ``ip``; ``user`` (the request context's user, else the IP); or
            ``account`` (the bearer token's subject, else the request context's
            user; a request with neither is not counted: pair it with an ``ip`` limit).
        scope_name: what the count is kept under; default the route's path.
        store: where to count; defaults to the stack's store.
        failure_policy: when the store fails: pass (``fail_open``) or 503.
    """

    def __init__(
        self,
        limit: str | Sequence[str],
        *,
        key: RouteKey = "ip",
        store: Store | None = None,
        failure_policy: FailurePolicy = "fail_open",
        scope_name: str | None = None,
    ) -> None:
        self._items: tuple[RateLimitItem, ...] = _parse(limit)
        self._specs = limit
        if key not in ("ip", "user", "account"):
            raise ConfigurationError(f"key must be 'ip', 'user' or 'account', got {key!r}")
        self._key = key
        self._store = store
        self._policy = failure_policy
        self._scope_name = scope_name
        self._limiters: dict[int, KeyedLimits] = {}
        self._resolver = ClientIPResolver()

    def _limiter(self, request: Request) -> KeyedLimits:
        store = self._store
        if store is None:  # not `or`: an empty MemoryStore is falsy (it has __len__)
            stack = getattr(request.app.state, "pynomaly_security", None)
            store = getattr(stack, "store", None)
        if store is None:
            raise ConfigurationError(
                "RouteRateLimit has no store: pass store=... or call setup_security_middleware(app)"
            )
        limiter = self._limiters.get(id(store))
        if limiter is None:
            limiter = self._limiters[id(store)] = KeyedLimits(self._specs, store)
        return limiter

    async def __call__(self, request: Request) -> None:
        if not self._items:
            return
        ctx = get_request_context(request.scope)
        who = None
        if self._key == "account":
            subject = _bearer_subject(request) or (ctx.user_id if ctx is not None else None)
            if subject is None:
                return
            who = "account:" + subject
        elif self._key == "user" and ctx is not None and ctx.user_id:
            who = "user:" + ctx.user_id
        if who is None:
            ip = ctx.client_ip if ctx is not None else self._resolver.resolve(request.scope)
            who = "ip:" + (ip or "unknown")
        route = str(
            self._scope_name or getattr(request.scope.get("route"), "path", request.url.path)
        )
        try:
            refusal = await self._limiter(request).hit(route, who)
        except StorageError as exc:
            if self._policy == "fail_closed":
                note_refusal(request.scope, "rate_limit_unavailable", 503, repeating=True)
                raise HTTPException(503, "rate limiting unavailable") from exc
            return
        if refusal is not None:
            note_refusal(request.scope, "rate_limited", 429, repeating=True)
            raise HTTPException(429, "rate limit exceeded", headers=refusal)
