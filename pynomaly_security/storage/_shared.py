"""One connection (pool, client, thread) per backend, opened by its first user and
closed by its last.

Every component that names a URL (the rate limiter's store, the audit log, the
token vault, the registry itself during the lifespan) takes one use of that
URL's connection with :meth:`Shared.acquire` and gives it back with
:meth:`Shared.release`. Counting the uses is what lets a component built alone
(a CLI command, a test) close what it opened, while components built by one
registry share one pool that the registry's lifespan closes last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Lease", "Shared"]

T = TypeVar("T")


class Shared(Generic[T]):
    """A connection opened on the first :meth:`acquire`, closed on the last :meth:`release`.

    Args:
        connect: opens the connection (called once per open period).
        disconnect: closes it.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[T]],
        disconnect: Callable[[T], Awaitable[None]],
    ) -> None:
        self._connect = connect
        self._disconnect = disconnect
        self._value: T | None = None
        self._users = 0
        # Two first users racing must not open two pools (asyncpg's and SQLite's
        # opens await); the lock binds to a loop only when it is contended.
        self._lock = asyncio.Lock()

    @property
    def users(self) -> int:
        """How many uses are held (0: closed)."""
        return self._users

    @property
    def value(self) -> T | None:
        """The open connection, or None."""
        return self._value

    async def acquire(self) -> T:
        """Take one use of the connection, opening it if nobody holds it."""
        async with self._lock:
            if self._value is None:
                self._value = await self._connect()
            self._users += 1
            return self._value

    async def release(self) -> None:
        """Give one use back; the last one closes the connection."""
        async with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0 and self._value is not None:
                value, self._value = self._value, None
                await self._disconnect(value)

    async def check(self, probe: Callable[[T], Awaitable[object]]) -> bool:
        """Whether ``probe(connection)`` succeeds, holding a use for the probe
        (any failure at all means "not healthy")."""
        try:
            value = await self.acquire()
        except Exception:
            return False
        try:
            await probe(value)
            return True
        except Exception:
            return False
        finally:
            await self.release()

    async def close(self) -> None:
        """Close the connection whoever still holds a use (the owner's shutdown);
        a later :meth:`acquire` opens it again."""
        async with self._lock:
            self._users = 0
            if self._value is not None:
                value, self._value = self._value, None
                await self._disconnect(value)


class Lease(Generic[T]):
    """One component's use of a :class:`Shared` connection: taken on first need
    (so a component also works in an app that never runs a lifespan), given back
    once by :meth:`release`."""

    def __init__(self, shared: Shared[T]) -> None:
        self.shared = shared
        self._held = False

    async def get(self) -> T:
        """The connection, taking this component's use of it on the first call."""
        if self._held and self.shared.value is not None:
            return self.shared.value
        value = await self.shared.acquire()
        if self._held:  # a concurrent first call of this component took the use already
            await self.shared.release()
        self._held = True
        return value

    async def release(self) -> None:
        """Give this component's use back (idempotent)."""
        if self._held:
            self._held = False
            await self.shared.release()
