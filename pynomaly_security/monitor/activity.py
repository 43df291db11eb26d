"""Per-user activity: who did what, when, with what outcome (bounded, shared).

The tracking layer calls :meth:`UserTracker.add_row` on every request. That call
only appends to a bounded in-memory buffer (a ``deque`` with a ``maxlen``: no
I/O, no check, never blocks); a background task adds the buffered rows to the
store's ``activity`` log every ``flush_interval`` seconds. Reads flush this
worker's buffer first. With the stack's shared state (``STATE_URL``: Redis or
PostgreSQL; else the store of ``REDIS_URL``) every worker's rows land in one log
per user, so an admin sees the same activity whichever worker answers.

With tenancy (issue 21) the tracker is built on the tenant-scoped state
(``tenant_scoped=True``): each row carries the tenant the tracking layer read from
the request context, the flush appends each tenant's rows inside that tenant's
scope (so its streams are named in its namespace), and a read sees the running
tenant's log only: alice of tenant A and alice of tenant B are two streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from pynomaly_security._context import AccessRow, access_row
from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.storage.base import LogStore, MonitorState, Store, missing_capability
from pynomaly_security.storage.memory import MemoryStore
from pynomaly_security.tenancy.context import acting_for, current_tenant

__all__ = ["ActivityRecord", "UserTracker"]

log = get_logger(__name__)

EVENT_ACTIVITY_BUFFER_FULL = "user_activity_buffer_full"
EVENT_ACTIVITY_STORE_FAILED = "user_activity_store_failed"

_Pending = tuple["str | None", "str | None", AccessRow, "str | None"]
_WHO = itemgetter(0, 1)
_ROW = itemgetter(2)
_TENANT = itemgetter(3)


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

    Args:
        per_user: actions kept per user (the oldest dropped first).
        max_users: users kept (the least recently active dropped first).
        store: where the activity log lives (a store or state with
            :class:`~pynomaly_security.storage.base.LogStore`); default: memory.
        clock: injected for tests.
        max_pending: rows buffered at most between two flushes; beyond, the
            oldest are dropped rather than slow a request (a flush that finds the
            buffer full logs ``user_activity_buffer_full``). 50,000 rows in half a
            second is more than one worker serves.
        flush_interval: seconds between two background flushes.
        tenant_scoped: ``store`` is a tenant-scoped view (see the module docstring).
    """

    def __init__(
        self,
        *,
        per_user: int = 1000,
        max_users: int = 100_000,
        store: Store | MonitorState | None = None,
        clock: Callable[[], float] = time.time,
        max_pending: int = 50_000,
        flush_interval: float = 0.5,
        tenant_scoped: bool = False,
    ) -> None:
        self._scoped = tenant_scoped
        logs = store if store is not None else MemoryStore()
        if not isinstance(logs, LogStore):
            raise missing_capability(logs, LogStore, "user activity")
        self._log = logs.log("activity", max_entries=per_user, max_streams=max_users)
        self._clock = clock
        self._pending: deque[_Pending] = deque(maxlen=max_pending)
        self._append = self._pending.append
        self.append_row = self._append
        """``add_row`` as one C call: ``append_row((user_id, client_ip, row, tenant))``."""
        self._interval = flush_interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        """Rows the store refused (they are logged, not retried)."""

    # -- input (the request path) -------------------------------------------------------
    def add_row(
        self,
        user_id: str | None,
        client_ip: str | None,
        row: AccessRow,
        tenant: str | None = None,
    ) -> None:
        """Record one request's row under its user id, else ``ip:<client IP>``
        (what the tracking layer does), for ``tenant`` (the request context's): one
        append to a bounded buffer."""
        self._append((user_id, client_ip, row, tenant))

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
        row = access_row(
            timestamp, method, path, status_code, duration_ms / 1000, request_id, None, client_ip
        )
        self.add_row(key, client_ip, row, current_tenant())

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

    # -- background ---------------------------------------------------------------------
    async def flush(self) -> None:
        """Add the buffered rows to the store's log, in the order they came."""
        async with self._lock:  # one flush at a time keeps the order
            pending = self._pending
            if not pending:
                return
            if len(pending) == pending.maxlen:
                log.warning(EVENT_ACTIVITY_BUFFER_FULL, rows=len(pending))
            rows = list(pending)
            pending.clear()
            try:
                if self._scoped:  # each tenant's rows in its own scope, in arrival order
                    for tenant, run in groupby(rows, _TENANT):
                        with acting_for(tenant):
                            await self._log.append(_chunks(run))
                else:
                    await self._log.append(_chunks(rows))
            except StorageError as exc:
                self.dropped += len(rows)
                log.warning(EVENT_ACTIVITY_STORE_FAILED, rows=len(rows), error=safe_text(str(exc)))
            except Exception:  # the periodic flush has nobody to raise to
                self.dropped += len(rows)
                log.exception(EVENT_ACTIVITY_STORE_FAILED, rows=len(rows))

    async def start(self) -> None:
        """Start the periodic flush (idempotent); called from the stack's lifespan."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop the periodic flush and flush what is buffered."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()  # never raises: failures are logged and counted

    # -- reads --------------------------------------------------------------------------
    async def get_user_activity(self, user_id: str, hours: float = 24) -> list[ActivityRecord]:
        """The user's actions in the last ``hours`` (every worker's), newest first."""
        await self.flush()
        since = (self._clock() - hours * 3600) * 1_000_000
        rows = [row for row in await self._log.read(user_id) if row[0] >= since]
        # Workers flush on their own schedules, so a log shared by several is in
        # flush order: sort by the request's time (stable, so ties keep log order).
        rows.sort(key=lambda row: -row[0])
        return [
            ActivityRecord(ts / 1_000_000, method, path, status, ip, rid or "", us / 1000)
            for ts, method, path, status, us, rid, _, ip in rows
        ]

    async def tracked_users(self) -> int:
        """How many users (and anonymous addresses) have activity kept."""
        await self.flush()
        return await self._log.streams()


def _chunks(rows: Iterable[_Pending]) -> list[tuple[str, list[AccessRow]]]:
    # A client's requests come in runs: a run is one chunk, named once
    # (groupby and itemgetter keep the per-row work in C).
    return [
        (user_id or f"ip:{client_ip or 'unknown'}", list(map(_ROW, run)))
        for (user_id, client_ip), run in groupby(rows, _WHO)
    ]
