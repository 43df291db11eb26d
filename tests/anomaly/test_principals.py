"""Per-principal windows stay bounded (issue 22, item 6)."""

from __future__ import annotations

import tracemalloc

from pynomaly_security.anomaly.principals import PrincipalWindows


def _fill(windows: PrincipalWindows, start: int, stop: int) -> None:
    for i in range(start, stop):
        windows.observe(f"u{i}", endpoint="/items", status=200, ip="203.0.113.9", at=1e9 + i)


def test_a_million_distinct_principals_keep_memory_bounded() -> None:
    """A million distinct principals cost what the bound costs: the oldest are evicted."""
    windows = PrincipalWindows(max_principals=10_000)
    tracemalloc.start()
    try:
        _fill(windows, 0, 10_000)
        full, _ = tracemalloc.get_traced_memory()  # the memory of a full map
    finally:
        tracemalloc.stop()
    _fill(windows, 10_000, 900_000)
    tracemalloc.start()
    try:
        _fill(windows, 900_000, 1_000_000)
        grown, _ = tracemalloc.get_traced_memory()  # what the last 100,000 left alive
    finally:
        tracemalloc.stop()
    assert len(windows) == 10_000
    assert grown < full * 1.5
    assert windows.behaviour("u0", 1e9 + 1_000_000) is None


def test_window_features() -> None:
    """Rate, spread, errors, auth failures, new address and lowest score of one principal."""
    w = PrincipalWindows(window=60.0)
    w.observe("alice", endpoint="/a", status=200, ip="10.0.0.1", at=1000.0)
    f = w.observe(
        "alice",
        endpoint="/b",
        status=401,
        ip="10.0.0.2",
        at=1001.0,
        score=12,
        explanation=[{"feature": "unknown parameter"}],
    )
    assert f["new_ip"] and f["requests"] == 2 and f["distinct_endpoints"] == 2
    assert f["auth_failures"] == 1 and f["error_ratio"] == 0.5 and f["low_score"] == 12
    later = w.behaviour("alice", 1030.0)
    assert later is not None and later["explanation"] == [{"feature": "unknown parameter"}]
