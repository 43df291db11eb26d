"""The shared-state interface every abuse-control feature depends on.

Counters, sliding windows, short-lived records (lockouts, revoked token ids,
used TOTP steps) and "distinct members seen in a window" (credential stuffing,
known devices) live behind these protocols, so a single process can keep them
in memory and a fleet of workers can share them in Redis. Features depend on
the protocols, never on a backend (like limits' ``aio/storage/base.py``).

Every method raises :class:`~pynomaly_security.exceptions.StorageError` (the
driver's exception chained) when the backend fails; what a feature then does
is its :data:`FailurePolicy`.

A :class:`Backend` is what a URL names (``storage/registry.py`` maps schemes to
modules): one connection pool, opened by its first user and closed by its last,
shared by every capability built on it. A capability is a method of the backend
returning an object that implements its Protocol; a backend without the method
does not have the capability, and the registry says so at construction:

    store()        :class:`Store` (the five Protocols below)  memory, redis
    audit_log()    the audit trail's append-only log,
                   ``audit.stores.base.AuditStore``           sqlite, postgresql
    token_vault()  ``protection.vault.base.TokenVault``       sqlite, redis, postgresql
    state()        :class:`MonitorState` (documents, logs,    memory, sqlite, redis,
                   tallies: the monitor's alerts, activity    postgresql
                   and counters)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage._shared import Shared

__all__ = [
    "BATCHABLE",
    "DEFAULT_FAILURE_POLICIES",
    "Backend",
    "BackendOptions",
    "BatchCall",
    "BatchStore",
    "CounterStore",
    "DocumentCollection",
    "DocumentStore",
    "EntryLog",
    "FailurePolicy",
    "KeyValueStore",
    "LogStore",
    "MemberStore",
    "MonitorState",
    "Scalar",
    "SlidingWindowStore",
    "Store",
    "TallyStore",
    "Where",
    "check_indexed",
    "failure_policy",
    "missing_capability",
]

FailurePolicy = Literal["fail_open", "fail_closed"]

# Safe defaults per feature: refusing every request because Redis blinked is
# worse than a brief window without rate limits, but accepting a revoked token,
# a replayed TOTP code or a locked account is a security failure.
DEFAULT_FAILURE_POLICIES: Mapping[str, FailurePolicy] = {
    "rate_limit": "fail_open",
    "lockout": "fail_closed",
    "tokens": "fail_closed",
    "totp": "fail_closed",
    "risk": "fail_open",
}


def failure_policy(overrides: Mapping[str, str], feature: str) -> FailurePolicy:
    """The policy of ``feature``: the override from settings, else the default."""
    if feature not in DEFAULT_FAILURE_POLICIES:
        raise ConfigurationError(
            f"unknown store feature {feature!r}; expected one of {sorted(DEFAULT_FAILURE_POLICIES)}"
        )
    value = overrides.get(feature, DEFAULT_FAILURE_POLICIES[feature])
    if value not in ("fail_open", "fail_closed"):
        raise ConfigurationError(
            f"store_failure_policy[{feature!r}] must be 'fail_open' or 'fail_closed', got {value!r}"
        )
    return value  # type: ignore[return-value]


@runtime_checkable
class CounterStore(Protocol):
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add to a counter and return it; the TTL starts at its first increment."""
        ...

    async def get_count(self, key: str) -> int:
        """The counter's value, 0 when absent or expired."""
        ...


@runtime_checkable
class SlidingWindowStore(Protocol):
    """The sliding-window-counter operations of limits' ``SlidingWindowCounterSupport``."""

    async def acquire_sliding_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Count ``amount`` hits if the weighted count stays within ``limit``."""
        ...

    async def acquire_sliding_window_stats(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[int, float, int, float]]:
        """:meth:`acquire_sliding_window` plus the window after it, in one round trip."""
        ...

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """(previous count, previous TTL, current count, current TTL) in seconds."""
        ...

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Forget both windows of ``key``."""
        ...


@runtime_checkable
class KeyValueStore(Protocol):
    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` (for ``ttl`` seconds, or until evicted/deleted)."""
        ...

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` only if absent; False if it was there (atomic, like SET NX)."""
        ...

    async def get(self, key: str) -> str | None:
        """The value of ``key`` or None."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The values of ``keys`` (None where absent), in one round trip."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        ...

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, str]]:
        """Up to ``limit`` live (key, value) pairs whose key starts with ``prefix``."""
        ...


@runtime_checkable
class MemberStore(Protocol):
    async def add_member(self, key: str, member: str, window: float) -> int:
        """Record ``member`` under ``key``; the number of distinct members in ``window``."""
        ...

    async def has_member(self, key: str, member: str, window: float) -> bool:
        """Whether ``member`` was recorded under ``key`` within ``window`` seconds."""
        ...


BatchCall = tuple[str, tuple[Any, ...]]
"""One call of a :class:`BatchStore` batch: a method's name and its arguments."""

BATCHABLE = frozenset({"acquire_sliding_window_stats", "add_member", "put", "add", "get_many"})
"""The methods a batch may call."""


@runtime_checkable
class BatchStore(Protocol):
    """Several calls in one round trip (the correlation engine's per-event work, issue 16)."""

    async def batch(self, calls: Sequence[BatchCall]) -> list[Any]:
        """Run ``calls`` (methods named in :data:`BATCHABLE`, with their arguments) in order,
        in one round trip; each call's result as the method returns it. Not a transaction:
        each call is atomic on its own, as when called alone."""
        ...


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What a registry tells every backend it builds (each takes what applies to it).

    Args:
        max_keys: memory: most keys kept (LRU beyond).
        max_members: memory and Redis: most members kept per member set.
        socket_timeout: Redis: seconds before a command or connect fails.
        pool_size: PostgreSQL: most connections of the pool.
        create: SQLite: create a missing file and its tables; ``False`` for
            readers (verify, export), which must neither write nor report an
            empty new file as a valid store.
        client_name: the name Redis (``CLIENT SETNAME``) and PostgreSQL
            (``application_name``) show for our connections.
        clock: seconds since the epoch; injected by tests.
    """

    max_keys: int = 100_000
    max_members: int = 1_000
    socket_timeout: float = 1.0
    pool_size: int = 10
    create: bool = True
    client_name: str = "pynomaly-security"
    clock: Callable[[], float] = time.time


class Backend(Protocol):
    """The server or file one URL names, with the one connection its capabilities share."""

    url: str
    shared: bool
    """Whether other processes see the same state (False for memory)."""
    connection: Shared[Any]
    """Opened by the first user (the registry's lifespan, or a component built
    alone), closed by the last."""

    async def healthcheck(self) -> bool:
        """True when the backend answers."""
        ...


@runtime_checkable
class Store(CounterStore, SlidingWindowStore, KeyValueStore, MemberStore, BatchStore, Protocol):
    """Everything above, plus a lifecycle driven by the application's lifespan."""

    @property
    def shared(self) -> bool:
        """Whether other processes see the same state (False for memory)."""
        ...

    async def start(self) -> None:
        """Open connections (idempotent); called from the lifespan."""
        ...

    async def aclose(self) -> None:
        """Close connections (idempotent)."""
        ...

    async def healthcheck(self) -> bool:
        """True when the backend answers."""
        ...


# -- monitor state: alerts, activity, tallies (issue 13, item 5) ----------------------------
# Three more capabilities, each small enough for a SQL table to implement: the
# monitor's alerts are documents with queries on declared fields, user activity
# is a family of bounded append-only logs, and the monitor's counters are tallies.

Scalar = str | int | float | bool | None
"""A value an indexed document field, or a query on one, may hold."""
Where = Mapping[str, Scalar] | None
"""Equality conditions on indexed fields (all must hold); None: every document."""


@runtime_checkable
class DocumentCollection(Protocol):
    """JSON objects by id, newest first, queried by equality on the declared fields.

    SQL: one table (``id``, ``seq``, one column per indexed field, ``body``); a
    query is ``WHERE`` on the columns ``ORDER BY seq DESC``, a count ``GROUP BY``.
    """

    async def put(self, doc_id: str, document: Mapping[str, Any]) -> None:
        """Insert (or replace) a document; beyond the collection's bound the oldest go."""
        ...

    async def add(self, doc_id: str, document: Mapping[str, Any]) -> bool:
        """Insert a document only if its id is absent (atomic, like SET NX): of two
        workers adding one id, one gets True and the other False, nothing written."""
        ...

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        """One document, or None."""
        ...

    async def update(
        self, doc_id: str, changes: Mapping[str, Any], *, only_if: Where = None
    ) -> dict[str, Any] | None:
        """Set ``changes`` atomically when the document's fields equal ``only_if``;
        the document as it is afterwards (changed or not), None for an unknown id."""
        ...

    async def find(self, where: Where = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` documents whose indexed fields equal ``where``, newest first."""
        ...

    async def count(self, where: Where = None, *, group_by: str) -> dict[Scalar, int]:
        """How many documents match ``where``, per value of the indexed field ``group_by``."""
        ...


def check_indexed(indexed: Sequence[str], names: Iterable[str]) -> None:
    """Refuse a query on a field the collection does not index (it would be a scan)."""
    for name in names:
        if name not in indexed:
            raise ConfigurationError(f"{name!r} is not an indexed field of this collection")


@runtime_checkable
class DocumentStore(Protocol):
    def documents(self, name: str, *, indexed: Sequence[str], keep: int) -> DocumentCollection:
        """The collection ``name`` (the same one for every caller of the store), holding at
        most ``keep`` documents; ``where`` and ``group_by`` may name only ``indexed`` fields."""
        ...


@runtime_checkable
class EntryLog(Protocol):
    """Bounded append-only logs by stream (one per user, say), the least recently
    used stream dropped first.

    SQL: one table (``stream``, ``seq``, ``entry``) trimmed per stream and by stream.
    """

    async def append(self, chunks: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Append each chunk's entries (JSON values, oldest first) to its stream, in order."""
        ...

    async def read(self, stream: str, *, limit: int | None = None) -> list[Any]:
        """The stream's entries, newest first (JSON arrays may come back as lists)."""
        ...

    async def streams(self) -> int:
        """How many streams are kept."""
        ...


@runtime_checkable
class LogStore(Protocol):
    def log(self, name: str, *, max_entries: int, max_streams: int) -> EntryLog:
        """The log family ``name`` (the same one for every caller of the store): at
        most ``max_entries`` per stream and ``max_streams`` streams."""
        ...


@runtime_checkable
class TallyStore(Protocol):
    """Named sets of counters that never expire (SQL: ``(name, field, value)``, upserted)."""

    async def add_tallies(self, name: str, deltas: Mapping[str, int]) -> None:
        """Add each delta to its counter, atomically for the whole mapping."""
        ...

    async def tallies(self, name: str) -> dict[str, int]:
        """Every counter of ``name``."""
        ...


@runtime_checkable
class MonitorState(DocumentStore, LogStore, TallyStore, Protocol):
    """The three above on one backend: where the monitor keeps alerts, activity and
    counters (``STATE_URL``; memory and Redis stores have them, and
    ``storage/sql_state.py`` on SQLite and PostgreSQL)."""


@runtime_checkable
class ChangeNotifier(Protocol):
    """Tell the other workers now that something changed (Redis pub/sub): optional, a
    speed-up over polling, never the only path (a message can be lost; polls are not)."""

    async def publish(self, channel: str) -> None:
        """Send a wake-up on ``channel`` to every listener (none: nothing happens)."""
        ...

    async def listen(self, channel: str, on_message: Callable[[], Awaitable[object]]) -> None:
        """Call ``on_message`` for each wake-up on ``channel`` until cancelled."""
        ...


def missing_capability(store: object, protocol: object, feature: str) -> ConfigurationError:
    """The error for a feature built on a store without the capability it needs
    (checked when the feature is built, like limits' ``MovingWindowSupport``)."""
    name = getattr(protocol, "__name__", repr(protocol))
    return ConfigurationError(
        f"{feature} needs a store with {name}; {type(store).__name__} does not have it"
    )
