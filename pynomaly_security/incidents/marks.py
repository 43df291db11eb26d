"""Playbook run marks (a step's done mark, the per-minute rate) in the shared state.

The runner keeps two kinds of keys: a step's idempotency mark (insert-if-absent,
``running`` then the step's result) and the count of changes a playbook made in a
minute (its ``max_actions_per_minute`` guardrail). Both must be seen by every worker.
With ``REDIS_URL`` they live in the stack's store; without it that store is this
process's memory, so an app on SQL state (``STATE_URL`` SQLite or PostgreSQL) and
several workers would run a step once *per worker* and rate each worker alone.
:class:`StateMarks` keeps them in the state's documents instead (collection
``playbook_marks``), offering the few key-value calls the runner makes.

Every write is atomic in the state: the insert is ``DocumentCollection.add`` (one of
two workers wins), and every change of an existing mark is a compare-and-set on its
``gen`` (a fresh random token per write), retried a bounded number of times. Expiry
is a time in the document, read against the injected clock; an expired mark is
absent to the reader and replaced by the next writer. The collection is bounded
(:data:`MAX_MARKS`, oldest first), as the store's keys are by their time-to-live.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from pynomaly_security.exceptions import StorageError
from pynomaly_security.storage.base import DocumentCollection, DocumentStore

__all__ = ["MAX_MARKS", "StateMarks"]

MAX_MARKS = 50_000
_TRIES = 16


class StateMarks:
    """``add``/``get``/``put``/``delete``/``incr`` over a state's documents.

    Args:
        state: the shared state (``STATE_URL``).
        clock: seconds since the epoch (the automation's).
    """

    def __init__(self, state: DocumentStore, clock: Callable[[], float]) -> None:
        self._docs: DocumentCollection = state.documents(
            "playbook_marks", indexed=("gen",), keep=MAX_MARKS
        )
        self._clock = clock

    def _live(self, doc: dict[str, Any] | None) -> bool:
        return doc is not None and float(doc.get("expires_at", 0)) > self._clock()

    def _doc(self, value: Any, ttl: float) -> dict[str, Any]:
        return {"value": value, "expires_at": self._clock() + ttl, "gen": secrets.token_hex(8)}

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` only if it is absent or expired; whether this call set it."""
        for _ in range(_TRIES):
            new = self._doc(value, ttl)
            if await self._docs.add(key, new):
                return True
            found = await self._docs.get(key)
            if found is None:
                continue  # evicted in between: insert again
            if self._live(found):
                return False
            after = await self._docs.update(key, new, only_if={"gen": found.get("gen")})
            if after is not None and after.get("gen") == new["gen"]:
                return True
        raise StorageError("playbook mark: too many concurrent writers")

    async def get(self, key: str) -> Any:
        found = await self._docs.get(key)
        return found["value"] if found is not None and self._live(found) else None

    async def put(self, key: str, value: str, ttl: float) -> None:
        await self._docs.put(key, self._doc(value, ttl))

    async def delete(self, key: str) -> None:
        # Collections have no delete: an expired mark is absent to every reader.
        await self._docs.update(key, {"expires_at": 0, "gen": secrets.token_hex(8)})

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter (a new one lives ``ttl`` seconds); its value."""
        for _ in range(_TRIES):
            found = await self._docs.get(key)
            if found is None or not self._live(found):
                new = self._doc(amount, ttl)
                if found is None:
                    if await self._docs.add(key, new):
                        return amount
                    continue
                after = await self._docs.update(key, new, only_if={"gen": found.get("gen")})
            else:
                new = {"value": int(found["value"]) + amount, "gen": secrets.token_hex(8)}
                after = await self._docs.update(key, new, only_if={"gen": found.get("gen")})
            if after is not None and after.get("gen") == new["gen"]:
                return int(after["value"])
        raise StorageError("playbook rate: too many concurrent writers")
