"""Forwarding committed events to compliance handlers (SIEMs), off the write path.

Handlers run in one background task fed by a bounded queue: a slow or failing
SIEM delays nothing and loses at most what overflows the queue (counted and
logged). Sync handlers run in a worker thread so they cannot block the loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from pynomaly_security.audit.records import AuditEntry, ComplianceStandard

__all__ = ["ComplianceDispatcher", "ComplianceHandler"]

log = structlog.get_logger(__name__)

HANDLER_FAILED = "audit_compliance_handler_failed"
QUEUE_FULL = "audit_compliance_queue_full"

ComplianceHandler = Callable[[dict[str, Any]], Awaitable[None] | None]
Render = Callable[[AuditEntry, int], dict[str, Any]]


class ComplianceDispatcher:
    def __init__(self, *, max_queue: int = 10_000) -> None:
        self._handlers: list[tuple[ComplianceStandard, ComplianceHandler, Render]] = []
        self._max_queue = max_queue
        self._queue: asyncio.Queue[tuple[AuditEntry, int] | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._handlers) and self._queue is not None

    def register(
        self, standard: ComplianceStandard, handler: ComplianceHandler, render: Render
    ) -> None:
        self._handlers.append((standard, handler, render))

    def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue(self._max_queue)
            self._task = asyncio.create_task(self._run(), name="pynomaly-audit-compliance")

    def submit(self, entries: Sequence[AuditEntry], seqs: Sequence[int]) -> None:
        if self._queue is None:
            return
        wanted = {s for s, _, _ in self._handlers}
        for entry, seq in zip(entries, seqs, strict=True):
            if wanted.intersection(entry.standards):
                try:
                    self._queue.put_nowait((entry, seq))
                except asyncio.QueueFull:
                    self.dropped += 1
                    log.warning(QUEUE_FULL, dropped=self.dropped)

    async def aclose(self) -> None:
        """Deliver what is queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = self._queue = None
        for handler in {id(h): h for _, h, _ in self._handlers}.values():
            close = getattr(handler, "aclose", None)
            if close is not None:
                await close()

    async def _run(self) -> None:
        assert self._queue is not None
        while (item := await self._queue.get()) is not None:
            entry, seq = item
            for standard, handler, render in self._handlers:
                if standard not in entry.standards:
                    continue
                try:
                    doc = render(entry, seq)
                    doc["forwarded_for"] = standard.value
                    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                        getattr(handler, "__call__", None)  # noqa: B004 - callable instances
                    ):
                        await handler(doc)  # type: ignore[misc]
                    else:
                        result = await asyncio.to_thread(handler, doc)
                        if inspect.isawaitable(result):
                            await result
                except Exception as exc:  # a SIEM failure never reaches the app
                    log.error(HANDLER_FAILED, standard=standard.value, error=type(exc).__name__)
