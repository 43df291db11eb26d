"""Per-route rate limits declared in code, as a FastAPI dependency.

The middleware takes limits from the settings (default and per path); this is
the same sliding-window counter for limits that belong next to the route::

    @app.post("/password-reset", dependencies=[Depends(RouteRateLimit("3/hour"))])

It counts in the stack's shared store (``app.state.pynomaly_security.store``)
unless given one, keyed by client IP (or by the signed-in user with
``key="user"``), separately per route. A refused request is ``429`` with
``Retry-After`` and the IETF ``RateLimit`` fields.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pynomaly_security._context import get_request_context
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.storage._limits import LimitsStorageAdapter
from pynomaly_security.storage.base import FailurePolicy, Store

__all__ = ["RouteRateLimit"]


class RouteRateLimit:
    """A FastAPI dependency enforcing ``limit`` on the route it decorates.

    Args:
        limit: ``limits`` notation, several separated by ``;`` (``"3/minute;20/hour"``).
        key: ``ip`` or ``user`` (the request context's user, else the IP).
        store: where to count; defaults to the stack's store.
        failure_policy: when the store fails: pass (``fail_open``) or 503.
    """

    def __init__(
        self,
        limit: str,
        *,
        key: Literal["ip", "user"] = "ip",
        store: Store | None = None,
        failure_policy: FailurePolicy = "fail_open",
    ) -> None:
        try:
            self._items: tuple[RateLimitItem, ...] = tuple(parse_many(limit))
        except ValueError as exc:
            raise ConfigurationError(f"{limit!r} is not a rate limit (e.g. '5/minute')") from exc
        if key not in ("ip", "user"):
            raise ConfigurationError(f"key must be 'ip' or 'user', got {key!r}")
        self._key = key
        self._store = store
        self._policy = failure_policy
        self._limiters: dict[int, SlidingWindowCounterRateLimiter] = {}
        self._resolver = ClientIPResolver()

    def _limiter(self, request: Request) -> SlidingWindowCounterRateLimiter:
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
            limiter = self._limiters[id(store)] = SlidingWindowCounterRateLimiter(
                LimitsStorageAdapter(store)
            )
        return limiter

    async def __call__(self, request: Request) -> None:
        ctx = get_request_context(request.scope)
        who = None
        if self._key == "user" and ctx is not None and ctx.user_id:
            who = "user:" + ctx.user_id
        if who is None:
            ip = ctx.client_ip if ctx is not None else self._resolver.resolve(request.scope)
            who = "ip:" + (ip or "unknown")
        route = getattr(request.scope.get("route"), "path", request.url.path)
        limiter = self._limiter(request)
        try:
            for item in self._items:
                if not await limiter.hit(item, "route-limit", route, who):
                    stats = await limiter.get_window_stats(item, "route-limit", route, who)
                    retry = max(1, math.ceil(stats.reset_time - time.time()))
                    name = f"{item.amount}-per-{item.multiples}-{item.GRANULARITY.name}"
                    raise HTTPException(
                        429,
                        "rate limit exceeded",
                        headers={
                            "Retry-After": str(retry),
                            "RateLimit-Policy": f'"{name}";q={item.amount};w={item.get_expiry()}',
                            "RateLimit": f'"{name}";r=0;t={retry}',
                        },
                    )
        except StorageError as exc:
            if self._policy == "fail_closed":
                raise HTTPException(503, "rate limiting unavailable") from exc
