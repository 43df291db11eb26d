"""One behavioural contract, run against every store backend (limits' tests/utils.py idea)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pynomaly_security.storage import Store, create_store


class Clock:
    """A hand-driven clock: the outside world's time, faked."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    options: dict[str, object] = {"clock": clock}
    if store_url.startswith("redis"):
        options["key_prefix"] = "pns-test:"
    backend = create_store(store_url, **options)
    await backend.start()
    yield backend
    await backend.aclose()


@pytest.mark.anyio
class TestStoreContract:
    async def test_incr_counts_and_reports(self, store: Store) -> None:
        """A counter adds up and reads back; an unknown counter is 0."""
        assert await store.get_count("c") == 0
        assert await store.incr("c", 60) == 1
        assert await store.incr("c", 60, 4) == 5
        assert await store.get_count("c") == 5

    async def test_add_is_set_if_absent(self, store: Store) -> None:
        """add() succeeds once per key: the basis of TOTP replay protection."""
        assert await store.add("totp:u:123", "1", 90) is True
        assert await store.add("totp:u:123", "1", 90) is False
        assert await store.get("totp:u:123") == "1"

    async def test_batch_runs_calls_in_order(self, store: Store) -> None:
        """batch() gives each call's result as the method alone would, in order: a later
        call sees an earlier one's write (the correlation engine's one round trip)."""
        results = await store.batch(
            [
                ("put", ("b:a", "1", 60)),
                ("get_many", (["b:a", "b:missing"],)),
                ("add", ("b:x", "1", 60)),
                ("add", ("b:x", "1", 60)),
                ("add_member", ("b:m", "alice", 60)),
                ("add_member", ("b:m", "bob", 60)),
                ("acquire_sliding_window_stats", ("b:w", 100, 60)),
                ("get_many", ([],)),
            ]
        )
        assert results[:6] == [None, ["1", None], True, False, 1, 2]
        allowed, (_, _, current, _) = results[6]
        assert allowed is True and current == 1
        assert results[7] == []
        with pytest.raises(ValueError, match="cannot be batched"):
            await store.batch([("delete", ("b:a",))])

    async def test_put_get_delete(self, store: Store) -> None:
        """Records round-trip and delete reports whether the key existed."""
        await store.put("k", "v", 60)
        assert await store.get("k") == "v"
        assert await store.delete("k") is True
        assert await store.delete("k") is False
        assert await store.get("k") is None

    async def test_get_many(self, store: Store) -> None:
        """get_many answers every key in order, None where absent."""
        await store.put("a", "1", 60)
        await store.put("c", "3", 60)
        assert await store.get_many(["a", "b", "c"]) == ["1", None, "3"]
        assert await store.get_many([]) == []

    async def test_put_without_ttl(self, store: Store) -> None:
        """A record without TTL stays."""
        await store.put("forever", "x")
        assert await store.get("forever") == "x"

    async def test_scan_by_prefix(self, store: Store) -> None:
        """scan() lists live records under a prefix only, bounded by limit."""
        for i in range(5):
            await store.put(f"lock:{i}", f"v{i}", 60)
        await store.put("other:1", "x", 60)
        found = dict(await store.scan("lock:"))
        assert found == {f"lock:{i}": f"v{i}" for i in range(5)}
        assert len(await store.scan("lock:", limit=2)) == 2

    async def test_distinct_members(self, store: Store) -> None:
        """add_member counts distinct members; has_member answers within the window."""
        assert await store.add_member("ip:1", "alice", 300) == 1
        assert await store.add_member("ip:1", "bob", 300) == 2
        assert await store.add_member("ip:1", "alice", 300) == 2
        assert await store.has_member("ip:1", "bob", 300) is True
        assert await store.has_member("ip:1", "carol", 300) is False

    async def test_sliding_window_holds_the_limit(self, store: Store) -> None:
        """Exactly `limit` hits are acquired in one window, the next is refused."""
        results = [await store.acquire_sliding_window("rl", 5, 60) for _ in range(7)]
        assert results == [True] * 5 + [False] * 2
        previous, _, current, _ = await store.get_sliding_window("rl", 60)
        assert (previous, current) == (0, 5)

    async def test_sliding_window_weights_previous(self, store: Store, clock: Clock) -> None:
        """Hits of the previous window count in proportion to their overlap."""
        clock.now = 6_000_000.0  # start of a 60 s window
        for _ in range(10):
            assert await store.acquire_sliding_window("w", 10, 60)
        clock.now += 60 + 30  # half way through the next window: 10 * 0.5 = 5 still count
        granted = [await store.acquire_sliding_window("w", 10, 60) for _ in range(7)]
        assert granted == [True] * 5 + [False] * 2
        await store.clear_sliding_window("w", 60)
        previous, _, current, _ = await store.get_sliding_window("w", 60)
        assert (previous, current) == (0, 0)

    async def test_acquire_returns_the_window(self, store: Store) -> None:
        """The stats variant answers the verdict and the counts after it in one call."""
        allowed, (previous, _, current, _) = await store.acquire_sliding_window_stats("s", 2, 60)
        assert (allowed, previous, current) == (True, 0, 1)
        await store.acquire_sliding_window("s", 2, 60)
        allowed, (previous, _, current, _) = await store.acquire_sliding_window_stats("s", 2, 60)
        assert (allowed, previous, current) == (False, 0, 2)

    async def test_amount_larger_than_limit_refused(self, store: Store) -> None:
        """A single hit costing more than the limit never passes."""
        assert await store.acquire_sliding_window("big", 3, 60, amount=4) is False

    async def test_healthcheck(self, store: Store) -> None:
        """A running backend is healthy."""
        assert await store.healthcheck() is True


@pytest.mark.anyio
async def test_memory_expiry_follows_clock(clock: Clock) -> None:
    """Memory records, counters and members expire by the injected clock."""
    store = create_store("memory://", clock=clock)
    await store.put("k", "v", 10)
    await store.incr("c", 10)
    await store.add_member("m", "x", 10)
    clock.now += 11
    assert await store.get("k") is None
    assert await store.get_count("c") == 0
    assert await store.has_member("m", "x", 10) is False
    assert await store.add("k", "again", 10) is True


@pytest.mark.anyio
@pytest.mark.redis
async def test_redis_ttl_is_set(redis_url: str) -> None:
    """Redis keys carry the TTL the feature asked for, so nothing leaks forever."""
    import redis.asyncio as aioredis

    store = create_store(redis_url, key_prefix="pns-test:")
    async with store:  # type: ignore[attr-defined]
        await store.incr("c", 30)
        await store.add("a", "1", 90)
        await store.add_member("m", "x", 300)
    client = aioredis.from_url(redis_url)
    try:
        assert 0 < await client.pttl("pns-test:c") <= 30_000
        assert 0 < await client.pttl("pns-test:a") <= 90_000
        assert 0 < await client.pttl("pns-test:m") <= 300_000
    finally:
        await client.aclose()
