"""Imported reputation lists in the shared state: one document per list.

A list is stored as its merged ranges (``IPRangeSet.dump``: compressed arrays) with its
action and expiry, in the ``intel_lists`` collection of the stack's state, and every
change bumps the ``intel`` tally of ``decisions``: workers reload the lists when it
moves (``decisions/sync.py``), decoding only lists whose ``rev`` changed. The
collection has no delete, so a removed list is overwritten by a tombstone.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pynomaly_security.intel.ranges import IPRangeSet
from pynomaly_security.storage.base import DocumentStore, TallyStore

__all__ = [
    "INTEL_ACTIONS",
    "MAX_LISTS",
    "VERSIONS",
    "IntelList",
    "IntelStore",
    "check_list_name",
]

INTEL_ACTIONS = ("ban", "require_mfa", "flag")
"""``flag`` enforces nothing: alerts and incidents name the list (enrichment)."""
MAX_LISTS = 64
VERSIONS = "decisions"
"""The tally set whose ``decisions`` and ``intel`` counters the workers poll."""
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class _State(DocumentStore, TallyStore, Protocol):
    pass


def check_list_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"list name {name!r}: 1..64 of letters, digits, '_', '.', '-'")
    return name


@dataclass(slots=True)
class IntelList:
    name: str
    action: str
    created_at: float
    expires_at: float
    entries: int
    ranges: IPRangeSet
    rev: str

    @property
    def origin(self) -> str:
        return f"intel:{self.name}"

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "entries": self.entries,
            "ranges": len(self.ranges),
            "origin": self.origin,
        }


class IntelStore:
    """Args:
    state: documents and tallies (the stack's state, else its store).
    clock: seconds since the epoch; injected by tests.
    """

    def __init__(self, state: _State, *, clock: Callable[[], float] = time.time) -> None:
        self._docs = state.documents("intel_lists", indexed=("name",), keep=MAX_LISTS)
        self._state = state
        self._clock = clock

    async def import_list(
        self, name: str, ranges: IPRangeSet, *, action: str, ttl: float
    ) -> IntelList:
        """Store (or replace) the list ``name``; ValueError for a bad name, action or ttl."""
        check_list_name(name)
        if action not in INTEL_ACTIONS:
            raise ValueError(f"action must be one of {list(INTEL_ACTIONS)}, got {action!r}")
        if not ttl > 0:
            raise ValueError("ttl must be > 0 seconds")
        live = [d for d in await self._docs.find(limit=MAX_LISTS) if not d.get("removed")]
        if len(live) >= MAX_LISTS and all(d["name"] != name for d in live):
            raise ValueError(f"at most {MAX_LISTS} lists; remove one first")
        now = self._clock()
        imported = IntelList(
            name, action, now, now + ttl, ranges.entries, ranges, secrets.token_hex(8)
        )
        await self._docs.put(
            name,
            {
                **imported.summary(),
                "rev": imported.rev,
                "removed": False,
                "data": ranges.dump(),
            },
        )
        await self._state.add_tallies(VERSIONS, {"intel": 1})
        return imported

    async def remove(self, name: str) -> bool:
        found = await self._docs.get(name)
        if found is None or found.get("removed"):
            return False
        await self._docs.put(name, {"name": name, "removed": True, "rev": secrets.token_hex(8)})
        await self._state.add_tallies(VERSIONS, {"intel": 1})
        return True

    async def summaries(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in d.items() if k not in ("data", "rev", "removed")}
            for d in await self._docs.find(limit=MAX_LISTS)
            if not d.get("removed")
        ]

    async def load(self, known: Mapping[str, IntelList]) -> dict[str, IntelList]:
        """Every stored list not removed; a list whose ``rev`` is in ``known`` is reused
        (not decoded again). Expired lists are kept: the index skips them by time."""
        out: dict[str, IntelList] = {}
        for doc in await self._docs.find(limit=MAX_LISTS):
            if doc.get("removed"):
                continue
            name, rev = str(doc["name"]), str(doc["rev"])
            previous = known.get(name)
            if previous is not None and previous.rev == rev:
                out[name] = previous
                continue
            out[name] = IntelList(
                name,
                str(doc["action"]),
                float(doc["created_at"]),
                float(doc["expires_at"]),
                int(doc["entries"]),
                IPRangeSet.load(doc["data"]),
                rev,
            )
        return out
