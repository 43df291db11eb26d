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
        self.generation = 0
        """Which open period this is: a use taken in an earlier one ended with it."""

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
        # Counted before the first await, so a release meanwhile cannot close what
        # this caller is about to use. No asyncio.Lock: a backend outlives event
        # loops (one per TestClient, per CLI command), and a lock binds to one.
        self._users += 1
        try:
            while self._value is None:
                value = await self._connect()
                if self._value is None:
                    self._value = value
                else:  # a concurrent first user opened it meanwhile: keep theirs
                    await self._disconnect(value)
        except BaseException:
            await self.release()
            raise
        return self._value

    async def release(self) -> None:
        """Give one use back; the last one closes the connection."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0 and self._value is not None:
            value, self._value = self._value, None
            self.generation += 1
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
        self._users = 0
        if self._value is not None:
            value, self._value = self._value, None
            self.generation += 1
            await self._disconnect(value)


class Lease(Generic[T]):
    """One component's use of a :class:`Shared` connection: taken on first need
    (so a component also works in an app that never runs a lifespan), given back
    once by :meth:`release`."""

    def __init__(self, shared: Shared[T]) -> None:
        self.shared = shared
        self._held: int | None = None  # the generation of the use held

    async def get(self) -> T:
        """The connection, taking this component's use of it on the first call."""
        shared = self.shared
        if self._held == shared.generation and shared.value is not None:
            return shared.value
        value = await shared.acquire()
        if self._held == shared.generation:  # a concurrent first call took the use already
            await shared.release()
        self._held = shared.generation
        return value

    async def release(self) -> None:
        """Give this component's use back (idempotent; a use the owner's close
        already ended is not given back twice)."""
        held, self._held = self._held, None
        if held is not None and held == self.shared.generation:
            await self.shared.release()
