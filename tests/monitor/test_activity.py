"""UserTracker: per-user and per-IP histories, bounded, newest first."""

from __future__ import annotations

from pynomaly_security.monitor import UserTracker


def _row(ts: float, path: str, user: str | None, ip: str | None) -> tuple:  # type: ignore[type-arg]
    return (int(ts * 1_000_000), "GET", path, 200, 1500, f"rid-{path}", user, ip)


def test_rows_land_under_their_user_or_ip_across_runs() -> None:
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

    def paths(key: str) -> list[str]:
        return [r.path for r in tracker.get_user_activity(key)]

    assert paths("alice") == []  # evicted: least recently used of 4 keys, max 3
    assert paths("ip:192.0.2.1") == ["/a3", "/a2", "/a1"]
    assert paths("ip:unknown") == ["/n1"]
    assert paths("ip:192.0.2.2") == ["/b3", "/b2", "/b1"]
    # Reads count as use: 192.0.2.2, read last, is the most recent key. A run of
    # another client after a read, then a new client, evicts the least recent.
    tracker.add_row(None, "192.0.2.1", _row(now, "/a4", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.1", _row(now, "/a5", None, "192.0.2.1"))
    tracker.add_row(None, "192.0.2.9", _row(now, "/c1", None, "192.0.2.9"))
    assert tracker.tracked_users == 3
    assert paths("ip:unknown") == []
    assert paths("ip:192.0.2.1") == ["/a5", "/a4", "/a3", "/a2", "/a1"]
    assert paths("ip:192.0.2.2") == ["/b3", "/b2", "/b1"]
