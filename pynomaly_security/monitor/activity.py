"""Per-user activity: who did what, when, with what outcome (bounded)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pynomaly_security._bounded import BoundedDict

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
    """

    def __init__(
        self,
        *,
        per_user: int = 1000,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_user = per_user
        self._users: BoundedDict[str, deque[ActivityRecord]] = BoundedDict(max_users)
        self._clock = clock

    @staticmethod
    def key_for(user_id: str | None, client_ip: str | None) -> str:
        if user_id:
            return user_id
        return f"ip:{client_ip or 'unknown'}"

    def record(self, key: str, record: ActivityRecord) -> None:
        self._users.setdefault(key, lambda: deque(maxlen=self._per_user)).append(record)

    def get_user_activity(self, user_id: str, hours: float = 24) -> list[ActivityRecord]:
        """The user's actions in the last ``hours``, newest first."""
        records = self._users.get(user_id)
        if not records:
            return []
        since = self._clock() - hours * 3600
        return [r for r in reversed(records) if r.timestamp >= since]

    @property
    def tracked_users(self) -> int:
        return len(self._users)
