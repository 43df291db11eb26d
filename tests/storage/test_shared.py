"""A backend's connection is opened by its first user and closed by its last, whatever
the interleaving of users (the connection itself is faked: it is the outside world)."""

from __future__ import annotations

import asyncio

import pytest

from pynomaly_security.storage._shared import Lease, Shared

pytestmark = pytest.mark.anyio


class Server:
    """Counts the connections opened and closed."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []

    async def connect(self) -> int:
        await asyncio.sleep(0)  # a real connect awaits: let a concurrent user in
        self.opened.append(len(self.opened) + 1)
        return self.opened[-1]

    async def disconnect(self, connection: int) -> None:
        self.closed.append(connection)


async def test_first_user_opens_last_user_closes() -> None:
    """Uses are counted: the connection closes when the last one is given back."""
    server = Server()
    shared = Shared(server.connect, server.disconnect)
    assert await shared.acquire() == 1
    assert await shared.acquire() == 1
    await shared.release()
    assert server.closed == []
    await shared.release()
    assert server.closed == [1]
    await shared.release()  # one too many: nothing happens
    assert (shared.users, server.closed) == (0, [1])


async def test_concurrent_first_users_end_with_one_connection() -> None:
    """Two users arriving together get the same connection; the spare one is closed."""
    server = Server()
    shared = Shared(server.connect, server.disconnect)
    first, second = await asyncio.gather(shared.acquire(), shared.acquire())
    assert first == second == shared.value
    assert shared.users == 2
    assert len(server.closed) == len(server.opened) - 1


async def test_a_lease_holds_one_use_however_often_it_is_used() -> None:
    """A component's lease counts once, even when its first calls run concurrently."""
    server = Server()
    shared = Shared(server.connect, server.disconnect)
    lease = Lease(shared)
    await asyncio.gather(*(lease.get() for _ in range(5)))
    assert shared.users == 1
    await lease.release()
    await lease.release()
    assert shared.users == 0 and shared.value is None


async def test_close_ends_every_use_and_a_later_use_reopens() -> None:
    """The owner's close shuts the connection even if a lease is still held; the lease
    then opens a new one on its next use."""
    server = Server()
    shared = Shared(server.connect, server.disconnect)
    lease = Lease(shared)
    assert await lease.get() == 1
    await shared.close()
    assert server.closed == [1]
    assert await lease.get() == 2
    assert shared.users == 1
