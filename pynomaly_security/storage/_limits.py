"""Our store behind the ``limits`` library's async strategies.

``limits.aio.strategies.SlidingWindowCounterRateLimiter`` only needs a storage
with the sliding-window-counter operations; this adapter gives it ours, so rate
limits share the bounded memory store or the Redis store (and its failure
policy) with lockouts and revocations instead of opening a second connection.

``hit()`` followed by ``get_window_stats()`` for the same key (what a limiter
does to fill the RateLimit headers) costs one store round trip, not two: the
acquire returns the window with its verdict and the adapter hands that to the
next read of the same key in the same task (a ``ContextVar``, so concurrent
requests never see each other's windows).
"""

from __future__ import annotations

from contextvars import ContextVar

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
        self._last: ContextVar[tuple[str, tuple[int, float, int, float]] | None] = ContextVar(
            f"pns_window_{id(self)}", default=None
        )

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
        allowed, window = await self.store.acquire_sliding_window_stats(key, limit, expiry, amount)
        self._last.set((key, window))
        return allowed

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        last = self._last.get()
        if last is not None and last[0] == key:
            self._last.set(None)  # used once: a later read goes to the store
            return last[1]
        return await self.store.get_sliding_window(key, expiry)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self.store.clear_sliding_window(key, expiry)
