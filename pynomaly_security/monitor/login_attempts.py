"""Failed-login counting, shared by enforcement (429) and the brute-force detector.

Counting happens inline on the request path (a few dict operations), so the
login after the N-th failure is refused at once; the alert that follows is
raised by :class:`~pynomaly_security.monitor.detectors.BruteForceDetector` from
the counts carried in the event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pynomaly_security._bounded import BoundedDict

__all__ = ["LoginAttemptTracker", "LoginCounts"]


@dataclass(frozen=True, slots=True)
class LoginCounts:
    ip_failures: int
    user_failures: int
    ip_locked_until: float | None


class LoginAttemptTracker:
    """Sliding-window failure counts per client IP and per user name.

    Args:
        max_attempts: failures within ``window`` seconds that lock the IP.
        window: the window, and how long the lock lasts.
        max_keys: bound of each per-key map.
        clock: injected for tests.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        window: float = 300.0,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_attempts = max_attempts
        self.window = window
        self.clock = clock
        self._by_ip: BoundedDict[str, deque[float]] = BoundedDict(max_keys)
        self._by_user: BoundedDict[str, deque[float]] = BoundedDict(max_keys)
        self._locked: BoundedDict[str, float] = BoundedDict(max_keys)

    def _count(self, table: BoundedDict[str, deque[float]], key: str, now: float) -> int:
        times = table.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times)

    def locked_until(self, ip: str | None) -> float | None:
        """When the lock on ``ip`` ends, or ``None`` if it is not locked."""
        if ip is None:
            return None
        until = self._locked.get(ip)
        if until is None:
            return None
        if until <= self.clock():
            self._locked.pop(ip)
            return None
        return until

    def record_failure(self, ip: str | None, username: str | None) -> LoginCounts:
        now = self.clock()
        ip_n = user_n = 0
        if ip is not None:
            times = self._by_ip.setdefault(ip, lambda: deque(maxlen=self.max_attempts * 4))
            times.append(now)
            ip_n = self._count(self._by_ip, ip, now)
            if ip_n >= self.max_attempts:
                self._locked[ip] = now + self.window
        if username:
            times = self._by_user.setdefault(username, lambda: deque(maxlen=self.max_attempts * 4))
            times.append(now)
            user_n = self._count(self._by_user, username, now)
        return LoginCounts(ip_n, user_n, self.locked_until(ip))

    def record_success(self, ip: str | None, username: str | None) -> None:
        """A successful login resets the user's count, not the IP's: otherwise one
        valid account would let an attacker wipe the IP's record between guesses."""
        del ip
        if username:
            self._by_user.pop(username)
