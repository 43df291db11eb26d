"""Each worker's copy of the decisions and lists, reloaded when their version moves.

A background task (started by the stack's lifespan, like the live settings' watch)
reads the two version counters every ``DECISION_POLL_SECONDS``; only when one moved
does it read the decisions (or the lists, decoding only the changed ones) and swap a
new :class:`~pynomaly_security.decisions.index.DecisionIndex` into the view the
middleware reads. A worker that made a change reloads at once (read-your-writes);
the others within a poll. Expiry needs no reload: a lookup compares ``expires_at``
with the clock, and the next rebuild drops what expired.

With a store only this process sees (``memory://``) there is nothing to poll: every
change is made here and reloads at once, and no task runs; a timer at the first
expiry drops what expired, and none is pending while nothing is in force (a pending
timer costs the event loop a clock read on every turn: measured, ~1,600 instructions
per request under ``bench/overhead.py --instructions``).

A store that fails keeps the last index in force (decisions already made stay
enforced; the failure is logged once per outage).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pynomaly_security._log import get_logger
from pynomaly_security._poller import StorePoller
from pynomaly_security.decisions.index import DecisionIndex, DecisionView
from pynomaly_security.decisions.store import DecisionStore
from pynomaly_security.intel.store import IntelList, IntelStore

__all__ = ["DecisionSync"]

log = get_logger(__name__)


class DecisionSync:
    """Args:
    decisions: the decisions' store.
    intel: the imported lists' store.
    view: what the middleware reads.
    poll_seconds: how often the versions are read.
    shared: whether other processes change the state (a memory state: False).
    """

    def __init__(
        self,
        decisions: DecisionStore,
        intel: IntelStore,
        view: DecisionView,
        *,
        poll_seconds: float = 0.5,
        shared: bool = True,
    ) -> None:
        self.shared = shared
        self.decisions = decisions
        self.intel = intel
        self.view = view
        self._poller = StorePoller(
            self.refresh,
            interval=poll_seconds,
            shared=shared,
            name="decisions",
            memory_hint="a decision applies to the worker that made it only; "
            "set PYNOMALY_SECURITY__REDIS_URL or STATE_URL",
        )
        self._seen: dict[str, int] | None = None
        self._lists: dict[str, IntelList] = {}
        self._live: list[Any] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed since the last read; True if the index was rebuilt."""
        async with self._lock:
            versions = await self.decisions.versions()
            seen = self._seen
            if not force and seen is not None and versions == seen:
                if self.view.index.next_expiry <= self.decisions.clock():
                    self.rebuild()  # something expired: drop it from the index
                    return True
                return False
            if force or seen is None or versions.get("decisions") != seen.get("decisions"):
                self._live = await self.decisions.live()
            if force or seen is None or versions.get("intel") != seen.get("intel"):
                self._lists = await self.intel.load(self._lists)
            self._seen = versions
            self.rebuild()
            return True

    def rebuild(self) -> None:
        """A new index from what was read (also after a change of the allow-list)."""
        now = self.decisions.clock()
        index = DecisionIndex.build(self._live, self._lists, allow=self.decisions.allow, now=now)
        self.view.set(index)
        if not self.shared:
            self._expire_at(index.next_expiry - now)

    def _expire_at(self, delay: float) -> None:
        """(Re)arm the one timer that drops expired entries (local state only)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delay == float("inf"):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # rebuilt outside the loop: the next change rebuilds
            return
        self._timer = loop.call_later(max(delay, 0.0) + 0.001, self.rebuild)

    async def start(self) -> None:
        await self._poller.start()

    async def aclose(self) -> None:
        self._expire_at(float("inf"))
        await self._poller.aclose()
