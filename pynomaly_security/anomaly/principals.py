"""Per-principal sliding windows: what one user (or, without a user, one address) did lately.

For each principal, over the last ``window`` seconds (two fixed windows, the
previous one weighted by how much of it still overlaps, as in the sliding window
counters of rate limiters): requests, distinct endpoints (up to 32 kept), answers
of 4xx/5xx, authentication failures (401/403), addresses (up to 8 kept) and the
UTC hours the principal was active at; and its lowest request score in the
window. At most ``max_principals`` are kept (least recently seen evicted first),
so a million distinct principals cost what ``max_principals`` cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pynomaly_security._bounded import BoundedDict

__all__ = ["PrincipalWindows", "Window"]

MAX_ENDPOINTS = 32
MAX_IPS = 8


@dataclass(slots=True)
class Window:
    start: float
    requests: int = 0
    previous: int = 0
    errors: int = 0
    auth_failures: int = 0
    endpoints: set[str] = field(default_factory=set)
    ips: list[str] = field(default_factory=list)
    hours: int = 0
    """Bit mask of the UTC hours seen (ever, while kept)."""
    low_score: int = 99
    explanation: list[dict[str, object]] = field(default_factory=list)


class PrincipalWindows:
    def __init__(self, *, window: float = 300.0, max_principals: int = 100_000) -> None:
        self.window = window
        self._windows: BoundedDict[str, Window] = BoundedDict(max_principals)

    def __len__(self) -> int:
        return len(self._windows)

    def observe(
        self,
        principal: str,
        *,
        endpoint: str,
        status: int,
        ip: str | None,
        at: float,
        score: int | None = None,
        explanation: list[dict[str, object]] | None = None,
    ) -> dict[str, Any]:
        """Count one request of ``principal``; returns its window features (before this
        request's address and hour were added: ``new_ip``, ``new_hour``)."""
        w = self._windows.setdefault(principal, lambda: Window(start=at))
        if at - w.start >= self.window:
            w.previous = w.requests if at - w.start < 2 * self.window else 0
            w.start, w.requests, w.errors, w.auth_failures = at, 0, 0, 0
            w.endpoints.clear()
            w.low_score, w.explanation = 99, []
        w.requests += 1
        if status >= 400:
            w.errors += 1
        if status in (401, 403):
            w.auth_failures += 1
        if len(w.endpoints) < MAX_ENDPOINTS:
            w.endpoints.add(endpoint)
        new_ip = ip is not None and ip not in w.ips
        if new_ip and ip is not None:
            w.ips = [*w.ips[-(MAX_IPS - 1) :], ip]
        hour = 1 << time.gmtime(at).tm_hour
        new_hour = not (w.hours & hour)
        w.hours |= hour
        if score is not None and score < w.low_score:
            w.low_score, w.explanation = score, list(explanation or ())
        return self._features(w, at, new_ip=new_ip, new_hour=new_hour)

    def _features(self, w: Window, at: float, *, new_ip: bool, new_hour: bool) -> dict[str, Any]:
        overlap = max(0.0, 1.0 - (at - w.start) / self.window)
        rate = w.requests + w.previous * overlap
        return {
            "requests": round(rate, 1),
            "distinct_endpoints": len(w.endpoints),
            "error_ratio": round(w.errors / w.requests, 3) if w.requests else 0.0,
            "auth_failures": w.auth_failures,
            "new_ip": new_ip,
            "new_hour": new_hour,
            "hours_seen": w.hours.bit_count(),
            "low_score": w.low_score,
        }

    def behaviour(self, principal: str, now: float | None = None) -> dict[str, Any] | None:
        """The principal's window features and lowest score, or None if not kept."""
        w = self._windows.get(principal)
        if w is None:
            return None
        at = time.time() if now is None else now
        if at - w.start >= 2 * self.window:
            return None
        out = self._features(w, at, new_ip=False, new_hour=False)
        out["explanation"] = list(w.explanation)
        return out
