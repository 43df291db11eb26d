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

    store()        :class:`Store` (the four Protocols below)  memory, redis
    audit_log()    the audit trail's append-only log,
                   ``audit.stores.base.AuditStore``           sqlite, postgresql
    token_vault()  ``protection.vault.base.TokenVault``       sqlite, redis, postgresql
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage._shared import Shared

__all__ = [
    "DEFAULT_FAILURE_POLICIES",
    "Backend",
    "BackendOptions",
    "CounterStore",
    "FailurePolicy",
    "KeyValueStore",
    "MemberStore",
    "SlidingWindowStore",
    "Store",
    "failure_policy",
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
class Store(CounterStore, SlidingWindowStore, KeyValueStore, MemberStore, Protocol):
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
