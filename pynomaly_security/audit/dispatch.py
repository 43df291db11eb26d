"""Forwarding committed events to compliance handlers (SIEMs), off the write path.

Handlers run in one background task fed by a bounded queue: a slow or failing
SIEM delays nothing and loses at most what overflows the queue (counted and
logged). Sync handlers run in a worker thread so they cannot block the loop.

A compliance handler receives an :class:`~pynomaly_security.audit.events.AuditEvent`
(``.dict()`` / ``.model_dump()`` give the export document); a checkpoint (anchor)
handler receives the checkpoint's document, a ``dict``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pynomaly_security._log import get_logger
from pynomaly_security.audit.events import AuditEvent
from pynomaly_security.audit.records import AuditEntry, ComplianceStandard

__all__ = ["AnchorHandler", "ComplianceDispatcher", "ComplianceHandler"]

log = get_logger(__name__)

HANDLER_FAILED = "audit_compliance_handler_failed"
QUEUE_FULL = "audit_compliance_queue_full"

ComplianceHandler = Callable[[AuditEvent], Awaitable[None] | None]
AnchorHandler = Callable[[dict[str, Any]], Awaitable[None] | None]
Render = Callable[[AuditEntry, int], dict[str, Any]]
_Item = tuple[str, AuditEntry | dict[str, Any], int]


class ComplianceDispatcher:
    def __init__(self, *, max_queue: int = 10_000) -> None:
        self._handlers: list[tuple[ComplianceStandard, ComplianceHandler, Render]] = []
        self._anchors: list[AnchorHandler] = []
        self._max_queue = max_queue
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._handlers) and self._queue is not None

    def register_anchor(self, handler: AnchorHandler) -> None:
        self._anchors.append(handler)

    def submit_checkpoint(self, doc: dict[str, Any]) -> None:
        """Queue a signed checkpoint for the anchor handlers (kept outside the store)."""
        if self._queue is not None and self._anchors:
            self._put(("checkpoint", doc, 0))

    def _put(self, item: _Item) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(QUEUE_FULL, dropped=self.dropped)

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
                self._put(("entry", entry, seq))

    async def aclose(self) -> None:
        """Deliver what is queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = self._queue = None
        handlers = [h for _, h, _ in self._handlers] + self._anchors
        for handler in {id(h): h for h in handlers}.values():
            close = getattr(handler, "aclose", None)
            if close is not None:
                await close()

    async def _run(self) -> None:
        assert self._queue is not None
        while (item := await self._queue.get()) is not None:
            what, body, seq = item
            if what == "checkpoint":
                assert isinstance(body, dict)
                for anchor in self._anchors:
                    await _call(anchor, dict(body), "checkpoint")
                continue
            assert isinstance(body, AuditEntry)
            for standard, handler, render in self._handlers:
                if standard in body.standards:
                    doc = render(body, seq)
                    doc["forwarded_for"] = standard.value
                    await _call(handler, AuditEvent.from_document(doc), standard.value)


async def _call(handler: Callable[[Any], Any], doc: Any, label: str) -> None:
    try:
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - callable instances
        ):
            await handler(doc)
        else:
            result = await asyncio.to_thread(handler, doc)
            if inspect.isawaitable(result):
                await result
    except Exception as exc:  # a SIEM failure never reaches the app
        log.error(HANDLER_FAILED, standard=label, error=type(exc).__name__)
