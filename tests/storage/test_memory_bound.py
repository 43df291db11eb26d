"""The memory store stays flat under a flood of distinct keys."""

from __future__ import annotations

import tracemalloc

import pytest

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.memory import MemoryStore


@pytest.mark.anyio
async def test_million_distinct_keys_stay_bounded() -> None:
    """A million distinct client IPs never grow the store past its bound, and
    memory after the flood is what the bound alone costs."""
    store = MemoryStore(max_keys=10_000)
    for i in range(10_000):
        await store.incr(f"ip:{i}", 60)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for i in range(10_000, 1_000_000):
            await store.incr(f"ip:{i}", 60)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == 10_000
    # Full at the start and full at the end: growth is noise, not 990k entries
    # (which would be well over 100 MB).
    assert after - baseline < 2_000_000


@pytest.mark.anyio
async def test_least_recently_used_is_evicted() -> None:
    """A key touched recently survives eviction; the coldest goes."""
    store = MemoryStore(max_keys=3)
    await store.put("a", "1")
    await store.put("b", "2")
    await store.put("c", "3")
    assert await store.get("a") == "1"  # touch a: b is now the coldest
    await store.put("d", "4")
    assert await store.get("b") is None
    assert await store.get("a") == "1"


@pytest.mark.anyio
async def test_member_sets_are_capped() -> None:
    """One key's member set keeps at most max_members (the newest)."""
    store = MemoryStore(max_members=3)
    for name in ("u1", "u2", "u3", "u4"):
        count = await store.add_member("ip", name, 300)
    assert count == 3
    assert await store.has_member("ip", "u1", 300) is False
    assert await store.has_member("ip", "u4", 300) is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_keys": 0}, "max_keys"), ({"max_members": 0}, "max_members")],
)
def test_bad_bounds_refused(kwargs: dict[str, int], message: str) -> None:
    """A zero bound is a configuration error at construction."""
    with pytest.raises(ConfigurationError, match=message):
        MemoryStore(**kwargs)  # type: ignore[arg-type]
