"""Group commit: one background task turns queued entries into transactions.

Urgent entries (security and audit events) wake the task at once and their
callers wait for the commit; access records (plain tuples appended to
:attr:`BatchWriter.access` by ``AuditLogger.log_request``) wait at most
``interval`` seconds and are sealed as access batches (``batch.py``).
Whatever piled up while a commit was in flight goes into the next one, so N
concurrent writers share one fsync instead of paying N. :meth:`BatchWriter.flush`
asks the task to commit what is queued now, without waiting for the interval.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence

from pynomaly_security._log import get_logger
from pynomaly_security.audit.batch import AccessRow, split_batches
from pynomaly_security.audit.records import AuditEntry, event_family
from pynomaly_security.exceptions import StorageError

__all__ = ["BatchWriter"]

log = get_logger(__name__)

FLUSH_FAILED = "audit_flush_failed"
ACCESS_DROPPED = "audit_access_records_dropped"
IDLE_FAILED = "audit_maintenance_failed"
_MAX_ACCESS = 20_000
"""Access records per flush (several batch records when more are queued)."""

Commit = Callable[[Sequence[AuditEntry], Sequence[Sequence[AccessRow]]], Awaitable[list[int]]]


class BatchWriter:
    """Args:
    commit: appends entries and access batches in one transaction, returns the
        entries' sequence numbers.
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
        self.access: deque[AccessRow] = deque()
        self.split: Callable[[list[AccessRow]], list[list[AccessRow]]] = split_batches
        """Cuts a flush's rows into batch records (per tenant with tenancy on)."""
        self.limit = max_pending
        """Queue bound read by the logger's fast path; 0 once closing."""
        self._urgent: list[tuple[AuditEntry, asyncio.Future[int]]] = []
        self._flushes: list[asyncio.Future[None]] = []
        """Callers of :meth:`flush` waiting for the next commit."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0
        self.written: Counter[str] = Counter()
        """Records committed by this writer since it was made, by kind: the entry's
        event family (``auth``, ``security``, ..., ``custom``) or ``access`` for an
        access batch record (many requests each). Only grows; the metrics hub reads
        the difference at each flush."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._closing, self.limit = False, self._max_pending
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="pynomaly-audit-writer")

    def submit_nowait(self, row: AccessRow) -> None:
        """Queue an access record; never blocks, never raises (drops when full).
        ``AuditLogger.log_request`` inlines this."""
        if len(self.access) >= self.limit:
            self.dropped += 1
            return
        self.access.append(row)

    def enqueue(self, entry: AuditEntry) -> asyncio.Future[int]:
        """Queue an urgent entry (on the writer's loop); the future of its commit."""
        if not self.running or self._wake is None:
            raise StorageError(
                "the audit logger is not started (call `await audit_logger.start()`)"
            )
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._urgent.append((entry, fut))
        self._wake.set()
        return fut

    async def submit(self, entry: AuditEntry) -> int:
        """Queue an urgent entry and wait until it is committed."""
        return await self.enqueue(entry)

    async def flush(self) -> None:
        """Commit everything queued so far now, and return once it is committed (access
        records a failed commit drops are logged, as on every flush). The task does
        it, so a flush never runs beside another commit."""
        if not self.running or self._wake is None:
            raise StorageError(
                "the audit logger is not started (call `await audit_logger.start()`)"
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append(fut)
        self._wake.set()
        await fut

    async def aclose(self) -> None:
        """Flush everything queued, then stop."""
        if self._task is None or self._wake is None:
            return
        self._closing = True
        self.limit = 0
        self._wake.set()
        await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._urgent and not self._closing and not self._flushes:
                try:
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            flushes, self._flushes = self._flushes, []
            # A flush() commits all that was queued when it ran: one _flush takes at
            # most _MAX_ACCESS rows, so a longer queue takes several (a bounded count,
            # whatever other threads append meanwhile).
            queued = len(self.access)
            for _ in range(1 + (queued - 1) // _MAX_ACCESS if flushes and queued else 1):
                await self._flush()
            for fut in flushes:
                if not fut.done():
                    fut.set_result(None)
            if self._closing and not self._urgent and not self.access:
                return
            if self._idle is not None and not self._urgent:
                try:
                    await self._idle()
                except Exception as exc:  # maintenance must never stop the writer
                    log.error(IDLE_FAILED, error=type(exc).__name__)

    async def _flush(self) -> None:
        urgent, self._urgent = self._urgent, []
        queue = self.access
        # popleft, not list()+clear(): a row appended from another thread meanwhile stays.
        access = [queue.popleft() for _ in range(min(len(queue), _MAX_ACCESS))]
        if not urgent and not access:
            return
        batches = self.split(access) if access else []
        try:
            seqs = await self._commit([entry for entry, _ in urgent], batches)
        except Exception as exc:
            log.error(FLUSH_FAILED, error=type(exc).__name__, records=len(access) + len(urgent))
            self.dropped += len(access)
            failure = exc if isinstance(exc, StorageError) else StorageError("audit commit failed")
            for _, fut in urgent:
                if not fut.done():
                    fut.set_exception(failure)
            return
        written = self.written
        for (entry, fut), seq in zip(urgent, seqs, strict=True):
            written[event_family(entry.event_type)] += 1
            if not fut.done():
                fut.set_result(seq)
        if batches:
            written["access"] += len(batches)
        if self.dropped:
            log.warning(ACCESS_DROPPED, count=self.dropped)
            self.dropped = 0
