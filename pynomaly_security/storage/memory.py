"""Bounded in-process store: the default for one worker.

Every key lives in one LRU map capped at ``max_keys``; the least recently used
key is evicted first, so a flood of distinct client IPs (or usernames) keeps
memory flat instead of growing until the process is killed. Expired entries
are dropped when touched and swept from the cold end on every write.

Not shared between processes: with several workers each has its own counts,
which multiplies every limit by the number of workers (the plugin warns).

``memory://`` names one :class:`MemoryStore` per registry: every component
asking for ``memory://`` shares it (its "pool" is the map itself). It keeps no
audit trail and no token vault: those must survive a restart.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage._shared import Shared
from pynomaly_security.storage._window import sliding_windows
from pynomaly_security.storage.base import BATCHABLE, BackendOptions

__all__ = ["MemoryBackend", "MemoryStore"]

_NEVER = math.inf
# How many cold entries each write inspects for expiry; amortised sweeping keeps
# writes O(1) while dead entries do not wait for LRU pressure to leave.
_SWEEP = 2


class MemoryBackend:
    """``memory://``: one bounded :class:`MemoryStore` shared by everything on the URL.

    Capabilities: :meth:`store`.
    """

    shared = False

    def __init__(self, url: str, options: BackendOptions) -> None:
        if url != "memory://":
            raise ConfigurationError(f"a memory store URL is memory://, got {url!r}")
        self.url = url
        self._store = MemoryStore(
            max_keys=options.max_keys, max_members=options.max_members, clock=options.clock
        )

        async def connect() -> MemoryStore:
            return self._store

        async def disconnect(store: MemoryStore) -> None:
            await store.aclose()

        self.connection: Shared[MemoryStore] = Shared(connect, disconnect)

    async def healthcheck(self) -> bool:
        return True

    def store(self) -> MemoryStore:
        """The one store of this URL."""
        return self._store

    def state(self) -> MemoryStore:
        """The monitor's state: the same store (documents, logs, tallies)."""
        return self._store


class MemoryStore:
    """In-memory :class:`~pynomaly_security.storage.base.Store`.

    Args:
        max_keys: most keys kept (all kinds together); the least recently used
            is evicted beyond it.
        max_members: most members kept per member set (oldest dropped first).
        clock: seconds since the epoch; injected by tests.

    Operations never await, so each one is atomic on the event loop.
    """

    shared = False

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        max_members: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_keys < 1:
            raise ConfigurationError(f"max_keys must be >= 1, got {max_keys}")
        if max_members < 1:
            raise ConfigurationError(f"max_members must be >= 1, got {max_members}")
        self._max_keys = max_keys
        self._max_members = max_members
        self._clock = clock
        # key -> [value, expires_at]; value is int, str or dict[str, float]
        self._data: OrderedDict[str, list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def __aenter__(self) -> MemoryStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._data.clear()

    async def healthcheck(self) -> bool:
        return True

    # -- internals ---------------------------------------------------------------------------
    def _live(self, key: str, now: float) -> list[Any] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry

    def _set(self, key: str, value: Any, expires_at: float, now: float) -> list[Any]:
        entry = [value, expires_at]
        self._data[key] = entry
        self._data.move_to_end(key)
        for _ in range(_SWEEP):
            cold_key, cold = next(iter(self._data.items()))
            if cold_key == key or cold[1] > now:
                break
            del self._data[cold_key]
        while len(self._data) > self._max_keys:
            self._data.popitem(last=False)
        return entry

    async def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """:class:`~pynomaly_security.storage.base.BatchStore`: the calls one after the other."""
        results: list[Any] = []
        for name, args in calls:
            if name not in BATCHABLE:
                raise ConfigurationError(f"{name!r} cannot be batched")
            results.append(await getattr(self, name)(*args))
        return results

    # -- counters -----------------------------------------------------------------------------
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            self._set(key, amount, now + ttl, now)
            return amount
        entry[0] = int(entry[0]) + amount
        return int(entry[0])

    async def get_count(self, key: str) -> int:
        entry = self._live(key, self._clock())
        return int(entry[0]) if entry is not None else 0

    # -- sliding window ----------------------------------------------------------------------
    async def acquire_sliding_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return (await self.acquire_sliding_window_stats(key, limit, expiry, amount))[0]

    async def acquire_sliding_window_stats(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[int, float, int, float]]:
        now = self._clock()
        w = sliding_windows(key, expiry, now)
        previous = self._count(w.previous_key, now)
        current = self._count(w.current_key, now)
        allowed = math.floor(previous * w.previous_ttl / expiry) + current + amount <= limit
        if allowed:
            current = await self.incr(w.current_key, 2 * expiry, amount)
        return allowed, (previous, w.previous_ttl if previous else 0.0, current, w.current_ttl)

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        now = self._clock()
        w = sliding_windows(key, expiry, now)
        previous = self._count(w.previous_key, now)
        current = self._count(w.current_key, now)
        return (previous, w.previous_ttl if previous else 0.0, current, w.current_ttl)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        w = sliding_windows(key, expiry, self._clock())
        self._data.pop(w.previous_key, None)
        self._data.pop(w.current_key, None)

    def _count(self, key: str, now: float) -> int:
        entry = self._live(key, now)
        return int(entry[0]) if entry is not None else 0

    # -- key/value ---------------------------------------------------------------------------
    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        now = self._clock()
        self._set(key, value, now + ttl if ttl is not None else _NEVER, now)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        now = self._clock()
        if self._live(key, now) is not None:
            return False
        self._set(key, value, now + ttl, now)
        return True

    async def get(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        return str(entry[0]) if entry is not None else None

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    async def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, str]]:
        now = self._clock()
        found: list[tuple[str, str]] = []
        for key, (value, expires_at) in list(self._data.items()):
            if key.startswith(prefix) and expires_at > now and isinstance(value, str):
                found.append((key, value))
                if len(found) >= limit:
                    break
        return found

    # -- members ---------------------------------------------------------------------------
    async def add_member(self, key: str, member: str, window: float) -> int:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None or not isinstance(entry[0], dict):
            entry = self._set(key, {}, now + window, now)
        members: dict[str, float] = entry[0]
        members.pop(member, None)  # re-insert so dict order stays oldest-first
        members[member] = now
        horizon = now - window
        while members:  # oldest first, so trimming stops at the first live member
            oldest = next(iter(members))
            if members[oldest] > horizon:
                break
            del members[oldest]
        while len(members) > self._max_members:
            del members[next(iter(members))]
        entry[1] = now + window
        return len(members)

    async def has_member(self, key: str, member: str, window: float) -> bool:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None or not isinstance(entry[0], dict):
            return False
        seen = entry[0].get(member)
        return seen is not None and seen > now - window

    # -- monitor state: documents, logs, tallies (issue 13, item 5) ------------------------
    def _families(self) -> dict[tuple[str, str], Any]:
        # Kept apart from _data, so a flood of rate-limit keys never evicts an alert;
        # made on first use so this block stays one addition to the class.
        families: dict[tuple[str, str], Any] | None = self.__dict__.get("_monitor_families")
        if families is None:
            families = self.__dict__["_monitor_families"] = {}
        return families

    def documents(self, name: str, *, indexed: Sequence[str], keep: int) -> MemoryDocuments:
        """The collection ``name`` (see :class:`~pynomaly_security.storage.base.DocumentStore`)."""
        families = self._families()
        found = families.get(("documents", name))
        if found is None:
            found = families["documents", name] = MemoryDocuments(indexed, keep)
        return found

    def log(self, name: str, *, max_entries: int, max_streams: int) -> MemoryLog:
        """The log family ``name`` (see :class:`~pynomaly_security.storage.base.LogStore`)."""
        families = self._families()
        found = families.get(("log", name))
        if found is None:
            found = families["log", name] = MemoryLog(max_entries, max_streams)
        return found

    async def add_tallies(self, name: str, deltas: Mapping[str, int]) -> None:
        counts: dict[str, int] = self._families().setdefault(("tallies", name), {})
        for field_name, delta in deltas.items():
            counts[field_name] = counts.get(field_name, 0) + delta

    async def tallies(self, name: str) -> dict[str, int]:
        return dict(self._families().get(("tallies", name), {}))


# Imports of the monitor-state block (kept with it so it merges as one addition).
import json  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Mapping  # noqa: E402

from pynomaly_security._bounded import BoundedDict  # noqa: E402
from pynomaly_security.storage.base import Scalar, Where, check_indexed  # noqa: E402

__all__ += ["MemoryDocuments", "MemoryLog"]


def _matches(fields: Mapping[str, Scalar], where: Mapping[str, Scalar]) -> bool:
    return all(fields.get(name) == value for name, value in where.items())


class MemoryDocuments:
    """:class:`~pynomaly_security.storage.base.DocumentCollection` in one process.

    Documents are kept as JSON text, as Redis keeps them, so what a caller gets
    back never aliases what it stored and a value JSON cannot hold fails here too.
    """

    def __init__(self, indexed: Sequence[str], keep: int) -> None:
        if keep < 1:
            raise ConfigurationError(f"keep must be >= 1, got {keep}")
        self._indexed = tuple(indexed)
        self._keep = keep
        # id -> (JSON text, indexed fields); insertion order is age.
        self._docs: OrderedDict[str, tuple[str, dict[str, Scalar]]] = OrderedDict()

    def _index(self, document: Mapping[str, Any]) -> dict[str, Scalar]:
        return {name: document.get(name) for name in self._indexed}

    async def put(self, doc_id: str, document: Mapping[str, Any]) -> None:
        self._docs.pop(doc_id, None)
        self._docs[doc_id] = (json.dumps(dict(document)), self._index(document))
        while len(self._docs) > self._keep:
            self._docs.popitem(last=False)

    async def add(self, doc_id: str, document: Mapping[str, Any]) -> bool:
        if doc_id in self._docs:
            return False
        await self.put(doc_id, document)
        return True

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        found = self._docs.get(doc_id)
        return json.loads(found[0]) if found is not None else None

    async def update(
        self, doc_id: str, changes: Mapping[str, Any], *, only_if: Where = None
    ) -> dict[str, Any] | None:
        document = await self.get(doc_id)
        if document is None:
            return None
        if only_if is None or all(document.get(k) == v for k, v in only_if.items()):
            document.update(changes)
            self._docs[doc_id] = (json.dumps(document), self._index(document))
        return document

    async def find(self, where: Where = None, *, limit: int = 100) -> list[dict[str, Any]]:
        where = where or {}
        check_indexed(self._indexed, where)
        found: list[dict[str, Any]] = []
        for text, fields in reversed(self._docs.values()):
            if len(found) >= limit:
                break
            if _matches(fields, where):
                found.append(json.loads(text))
        return found

    async def count(self, where: Where = None, *, group_by: str) -> dict[Scalar, int]:
        where = where or {}
        check_indexed(self._indexed, [*where, group_by])
        counts: dict[Scalar, int] = {}
        for _, fields in self._docs.values():
            if _matches(fields, where):
                value = fields[group_by]
                counts[value] = counts.get(value, 0) + 1
        return counts


class MemoryLog:
    """:class:`~pynomaly_security.storage.base.EntryLog` in one process: a bounded
    LRU map of bounded deques. Entries are kept as given (no JSON round trip: the
    tracker appends on every request), so callers append immutable values."""

    def __init__(self, max_entries: int, max_streams: int) -> None:
        if max_entries < 1 or max_streams < 1:
            raise ConfigurationError("max_entries and max_streams must be >= 1")
        self._streams: BoundedDict[str, deque[Any]] = BoundedDict(max_streams)
        self._new: Callable[[], deque[Any]] = lambda: deque(maxlen=max_entries)

    async def append(self, chunks: Sequence[tuple[str, Sequence[Any]]]) -> None:
        streams, new = self._streams, self._new
        for stream, entries in chunks:
            streams.setdefault(stream, new).extend(entries)

    async def read(self, stream: str, *, limit: int | None = None) -> list[Any]:
        entries = self._streams.get(stream)  # a read is a use, as in any LRU
        if not entries:
            return []
        newest_first = list(reversed(entries))
        return newest_first[:limit] if limit is not None else newest_first

    async def streams(self) -> int:
        return len(self._streams)
