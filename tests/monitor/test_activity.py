"""UserTracker: per-user and per-IP histories, bounded, newest first."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from pynomaly_security.monitor import UserTracker
from pynomaly_security.storage import create_store


def _row(ts: float, path: str, user: str | None, ip: str | None) -> tuple:  # type: ignore[type-arg]
    return (int(ts * 1_000_000), "GET", path, 200, 1500, f"rid-{path}", user, ip)


@pytest.mark.anyio
async def test_rows_land_under_their_user_or_ip_across_runs() -> None:
    """A client's requests come in runs (the tracker skips the LRU upkeep within a
    run); interleaved clients, users and ``add`` still land where they belong."""
    now = 1_700_000_000.0
    tracker = UserTracker(max_users=3, clock=lambda: now + 1)
    tracker.add_row(None, "192.0.2.1", _row(now, "/a1", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.1", _row(now, "/a2", None, "192.0.2.1"))
    tracker.add_row("alice", "192.0.2.1", _row(now, "/u1", "alice", "192.0.2.1"))
    tracker.add_row(None, "192.0.2.1", _row(now, "/a3", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.2", _row(now, "/b1", None, "192.0.2.2"))
    tracker.add("ip:192.0.2.2", now, "GET", "/b2", 200, "192.0.2.2", "rid", 1.5)
    tracker.add_row(None, "192.0.2.2", _row(now, "/b3", None, "192.0.2.2"))
    tracker.add_row(None, None, _row(now, "/n1", None, None))

    async def paths(key: str) -> list[str]:
        return [r.path for r in await tracker.get_user_activity(key)]

    assert await paths("alice") == []  # evicted: least recently used of 4 keys, max 3
    assert await paths("ip:192.0.2.1") == ["/a3", "/a2", "/a1"]
    assert await paths("ip:unknown") == ["/n1"]
    assert await paths("ip:192.0.2.2") == ["/b3", "/b2", "/b1"]
    # Reads count as use: 192.0.2.2, read last, is the most recent key. A run of
    # another client after a read, then a new client, evicts the least recent.
    tracker.add_row(None, "192.0.2.1", _row(now, "/a4", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.1", _row(now, "/a5", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.9", _row(now, "/c1", None, "192.0.2.9"))
    assert await tracker.tracked_users() == 3
    assert await paths("ip:unknown") == []
    assert await paths("ip:192.0.2.1") == ["/a5", "/a4", "/a3", "/a2", "/a1"]
    assert await paths("ip:192.0.2.2") == ["/b3", "/b2", "/b1"]


@pytest.mark.anyio
async def test_the_request_path_only_buffers_and_the_buffer_is_bounded() -> None:
    """add_row() appends to a buffer (nothing reaches the log until a flush); past
    ``max_pending`` rows the oldest are dropped, and the flush that finds the buffer
    full says so."""
    store = create_store("memory://")
    tracker = UserTracker(store=store, max_pending=3)
    for n in range(5):
        tracker.add_row("alice", "192.0.2.1", _row(1_700_000_000.0 + n, f"/{n}", "alice", None))
    assert await store.log("activity", max_entries=1000, max_streams=100_000).read("alice") == []
    with capture_logs() as logs:
        got = await tracker.get_user_activity("alice", hours=10**6)
    assert [r.path for r in got] == ["/4", "/3", "/2"]
    assert [e["event"] for e in logs] == ["user_activity_buffer_full"]


@pytest.mark.anyio
async def test_workers_share_one_activity_log(redis_url: str) -> None:
    """Two trackers on the same Redis (two workers) write one log per user: each
    reads what the other recorded, newest first, after the writer's flush."""
    stores = [create_store(redis_url, key_prefix="pns-activity-test:") for _ in range(2)]
    one, two = (UserTracker(store=store) for store in stores)
    try:
        await one.start()
        now = 1_700_000_000.0
        one.add_row("alice", "192.0.2.1", _row(now, "/from-one", "alice", "192.0.2.1"))
        await one.flush()
        two.add_row("alice", "192.0.2.2", _row(now + 1, "/from-two", "alice", "192.0.2.2"))
        got = await two.get_user_activity("alice", hours=10**6)
        assert [(r.path, r.client_ip) for r in got] == [
            ("/from-two", "192.0.2.2"),
            ("/from-one", "192.0.2.1"),
        ]
        assert [r.path for r in await one.get_user_activity("alice", hours=10**6)] == [
            "/from-two",
            "/from-one",
        ]
    finally:
        await one.aclose()
        await two.aclose()
        for store in stores:
            await store.aclose()
