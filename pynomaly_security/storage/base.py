"""The shared-state interface every abuse-control feature depends on.

Counters, sliding windows, short-lived records (lockouts, revoked token ids,
used TOTP steps) and "distinct members seen in a window" (credential stuffing,
known devices) live behind these protocols, so a single process can keep them
in memory and a fleet of workers can share them in Redis. Features depend on
the protocols, never on a backend (like limits' ``aio/storage/base.py``).

Every method raises :class:`~pynomaly_security.exceptions.StorageError` (the
driver's exception chained) when the backend fails; what a feature then does
is its :data:`FailurePolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from pynomaly_security.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_FAILURE_POLICIES",
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
