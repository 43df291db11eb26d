"""One shared value kept current in every worker by polling the store.

Live settings and decisions are changed by one worker and read on every request by
all of them: each worker applies the store's version before serving, then (with a
store the workers share) every ``interval`` seconds in a task of its own. A store
outage is logged once, not at every poll, and the task outlives any one bad read.
With a per-process store the task has nothing to learn, and several workers would
disagree: start-up says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from pynomaly_security.exceptions import StorageError
from pynomaly_security.middleware.ratelimit import worker_count

__all__ = ["StorePoller"]

log = structlog.get_logger(__name__)


class StorePoller:
    """Calls ``refresh`` at start and then every ``interval`` seconds (``shared`` only).

    Args:
        refresh: reads the store and applies what changed.
        interval: seconds between two reads.
        shared: whether the store is shared by the workers (else no task).
        name: the log events' prefix (``<name>_unavailable``, ``<name>_watch_failed``,
            ``<name>_memory_store_with_workers``).
        memory_hint: what the start-up warning of a per-process store with several
            workers advises.
    """

    def __init__(
        self,
        refresh: Callable[[], Awaitable[object]],
        *,
        interval: float,
        shared: bool,
        name: str,
        memory_hint: str,
    ) -> None:
        self._refresh = refresh
        self.interval = interval
        self.shared = shared
        self._name = name
        self._hint = memory_hint
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply the stored version before serving; start the task (idempotent)."""
        if self._task is not None:
            return
        try:
            await self._refresh()
        except StorageError as exc:
            # Serve with what is known; the task applies the version once it can.
            log.warning(f"{self._name}_unavailable", error=str(exc))
        if self.shared:
            self._task = asyncio.get_running_loop().create_task(self._watch())
        elif worker_count() > 1:
            log.warning(f"{self._name}_memory_store_with_workers", hint=self._hint)

    async def _watch(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._refresh()
                failing = False
            except StorageError as exc:
                if not failing:  # once per outage, not twice a second
                    log.warning(f"{self._name}_unavailable", error=str(exc))
                failing = True
            except Exception as exc:  # the task outlives any one bad read
                log.error(f"{self._name}_watch_failed", error=repr(exc))

    async def aclose(self) -> None:
        """Stop the task."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
