"""Per-user activity: who did what, when, with what outcome (bounded)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pynomaly_security._bounded import BoundedDict
from pynomaly_security._context import AccessRow, access_row

__all__ = ["ActivityRecord", "UserTracker"]


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    timestamp: float
    method: str
    path: str
    status_code: int
    client_ip: str | None
    request_id: str
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UserTracker:
    """Keeps the latest ``per_user`` actions of at most ``max_users`` users.

    Requests without an authenticated user are kept under ``ip:<address>``.
    Rows are the request's :data:`~pynomaly_security._context.AccessRow`, the
    same tuple the audit logger queues; records are built when read.
    """

    def __init__(
        self,
        *,
        per_user: int = 1000,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_user = per_user
        self._users: BoundedDict[str, deque[AccessRow]] = BoundedDict(max_users)
        self._clock = clock
        self._new_history: Callable[[], deque[AccessRow]] = lambda: deque(maxlen=per_user)
        # The client IP of the last anonymous row and its history: a client's
        # requests come in runs, and the key used last is already the most recently
        # used one (nothing to move, never the one evicted), so a run skips the key
        # string and the LRU upkeep. Every other use of _users (add, reads) moves
        # another key to the end, so it resets this.
        self._last_ip: str | None = None
        self._last_rows: deque[AccessRow] | None = None

    def add(
        self,
        key: str,
        timestamp: float,
        method: str,
        path: str,
        status_code: int,
        client_ip: str | None,
        request_id: str,
        duration_ms: float,
    ) -> None:
        """Record one request under ``key`` (a user id, or ``ip:<address>``)."""
        self._last_rows = None
        self._users.setdefault(key, self._new_history).append(
            access_row(
                timestamp,
                method,
                path,
                status_code,
                duration_ms / 1000,
                request_id,
                None,
                client_ip,
            )
        )

    def add_row(self, user_id: str | None, client_ip: str | None, row: AccessRow) -> None:
        """Record one request's row under its user id, else ``ip:<client IP>``
        (what the tracking layer does)."""
        if user_id is None and client_ip == self._last_ip and self._last_rows is not None:
            self._last_rows.append(row)
            return
        rows = self._users.setdefault(user_id or f"ip:{client_ip or 'unknown'}", self._new_history)
        rows.append(row)
        if user_id is None:
            self._last_ip, self._last_rows = client_ip, rows
        else:
            self._last_rows = None

    def record(self, key: str, record: ActivityRecord) -> None:
        self.add(
            key,
            record.timestamp,
            record.method,
            record.path,
            record.status_code,
            record.client_ip,
            record.request_id,
            record.duration_ms,
        )

    def get_user_activity(self, user_id: str, hours: float = 24) -> list[ActivityRecord]:
        """The user's actions in the last ``hours``, newest first."""
        self._last_rows = None  # the read below makes user_id the most recent key
        rows = self._users.get(user_id)
        if not rows:
            return []
        since = (self._clock() - hours * 3600) * 1_000_000
        return [
            ActivityRecord(ts / 1_000_000, method, path, status, ip, rid or "", us / 1000)
            for ts, method, path, status, us, rid, _, ip in reversed(rows)
            if ts >= since
        ]

    @property
    def tracked_users(self) -> int:
        return len(self._users)
