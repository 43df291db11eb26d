"""Our store behind the ``limits`` library's async strategies.

``limits.aio.strategies.SlidingWindowCounterRateLimiter`` only needs a storage
with the sliding-window-counter operations; this adapter gives it ours, so rate
limits share the bounded memory store or the Redis store (and its failure
policy) with lockouts and revocations instead of opening a second connection.
"""

from __future__ import annotations

from limits.aio.storage import SlidingWindowCounterSupport
from limits.aio.storage import Storage as LimitsStorage

from pynomaly_security.exceptions import StorageError
from pynomaly_security.storage.base import Store

__all__ = ["LimitsStorageAdapter"]


class LimitsStorageAdapter(LimitsStorage, SlidingWindowCounterSupport):
    """A ``limits.aio`` storage backed by a :class:`Store` (sliding window counter only)."""

    STORAGE_SCHEME = None  # never registered under a URL scheme in limits

    def __init__(self, store: Store) -> None:
        super().__init__(uri=None, wrap_exceptions=False)
        self.store = store

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StorageError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return await self.store.incr(key, expiry, amount)

    async def get(self, key: str) -> int:
        return await self.store.get_count(key)

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("only the sliding window counter strategy is supported")

    async def check(self) -> bool:
        return await self.store.healthcheck()

    async def reset(self) -> int | None:
        raise NotImplementedError("reset the store itself")

    async def clear(self, key: str) -> None:
        await self.store.delete(key)

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return await self.store.acquire_sliding_window(key, limit, expiry, amount)

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return await self.store.get_sliding_window(key, expiry)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self.store.clear_sliding_window(key, expiry)
