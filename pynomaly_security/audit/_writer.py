"""Group commit: one background task turns queued entries into transactions.

Urgent entries (security and audit events) wake the task at once and their
callers wait for the commit; access records wait at most ``interval`` seconds.
Whatever piled up while a commit was in flight goes into the next one, so N
concurrent writers share one fsync instead of paying N.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import structlog

from pynomaly_security.audit.records import AuditEntry
from pynomaly_security.exceptions import StorageError

__all__ = ["BatchWriter"]

log = structlog.get_logger(__name__)

FLUSH_FAILED = "audit_flush_failed"
ACCESS_DROPPED = "audit_access_records_dropped"
IDLE_FAILED = "audit_maintenance_failed"
_MAX_BATCH = 5000

Commit = Callable[[Sequence[AuditEntry]], Awaitable[list[int]]]


class BatchWriter:
    """Args:
    commit: appends entries in one transaction, returns their sequence numbers.
    interval: seconds an access record may wait.
    max_pending: bound of queued access records (more are counted and dropped).
    idle: maintenance coroutine (checkpoints, retention) run between flushes.
    """

    def __init__(
        self,
        commit: Commit,
        *,
        interval: float,
        max_pending: int,
        idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._commit = commit
        self._interval = interval
        self._max_pending = max_pending
        self._idle = idle
        self._access: deque[AuditEntry] = deque()
        self._urgent: list[tuple[AuditEntry, asyncio.Future[int]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="pynomaly-audit-writer")

    def submit_nowait(self, entry: AuditEntry) -> None:
        """Queue an access record; never blocks, never raises (drops when full)."""
        if len(self._access) >= self._max_pending or self._closing:
            self.dropped += 1
            return
        self._access.append(entry)

    async def submit(self, entry: AuditEntry) -> int:
        """Queue an urgent entry and wait until it is committed."""
        if not self.running or self._wake is None:
            raise StorageError(
                "the audit logger is not started (call `await audit_logger.start()`)"
            )
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._urgent.append((entry, fut))
        self._wake.set()
        return await fut

    async def aclose(self) -> None:
        """Flush everything queued, then stop."""
        if self._task is None or self._wake is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._urgent and not self._closing:
                try:
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            await self._flush()
            if self._closing and not self._urgent and not self._access:
                return
            if self._idle is not None and not self._urgent:
                try:
                    await self._idle()
                except Exception as exc:  # maintenance must never stop the writer
                    log.error(IDLE_FAILED, error=type(exc).__name__)

    async def _flush(self) -> None:
        urgent, self._urgent = self._urgent, []
        access: list[AuditEntry] = []
        while self._access and len(access) < _MAX_BATCH:
            access.append(self._access.popleft())
        if not urgent and not access:
            return
        try:
            seqs = await self._commit([*access, *(entry for entry, _ in urgent)])
        except Exception as exc:
            log.error(FLUSH_FAILED, error=type(exc).__name__, records=len(access) + len(urgent))
            self.dropped += len(access)
            failure = exc if isinstance(exc, StorageError) else StorageError("audit commit failed")
            for _, fut in urgent:
                if not fut.done():
                    fut.set_exception(failure)
            return
        for (_, fut), seq in zip(urgent, seqs[len(access) :], strict=True):
            if not fut.done():
                fut.set_result(seq)
        if self.dropped:
            log.warning(ACCESS_DROPPED, count=self.dropped)
            self.dropped = 0
