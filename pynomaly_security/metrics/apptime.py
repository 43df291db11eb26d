"""The app's own time in a sampled request, for the stack's added-time histogram.

The stack's outer layer marks one request in ``METRICS_LATENCY_SAMPLE`` (decided
when it starts, from the low bits of its start time in nanoseconds: uniform, no
counter, no bias toward slow or fast requests) by putting a one-item list under
:data:`APP_TIME` in the scope. :class:`AppTimer`, which the stack puts directly
around the app (inside every layer of its own), adds the nanoseconds the app took
to that list; the outer layer observes its total minus the app's time:
``pynomaly_security_overhead_seconds``. A request that is not marked costs the
timer one scope lookup and no coroutine frame.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security.middleware._asgi import Layer, passes_through

__all__ = ["APP_TIME", "AppTimer"]

APP_TIME = "pynomaly_security.app_ns"
"""Scope key of a sampled request: ``[nanoseconds spent in the app]``."""

_perf_ns = time.perf_counter_ns


class AppTimer(Layer):
    """Times the app of the requests the outer layer sampled (:data:`APP_TIME`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        spent = scope.get(APP_TIME)
        if spent is None:
            return self.call_app(scope, receive, send)  # not sampled: no frame of this layer
        return self._timed(scope, receive, send, spent)

    async def _timed(self, scope: Scope, receive: Receive, send: Send, spent: list[int]) -> None:
        started = _perf_ns()
        try:
            await self.call_app(scope, receive, send)
        finally:
            spent[0] += _perf_ns() - started
