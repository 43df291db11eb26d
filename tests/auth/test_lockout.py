"""django-axes semantics: lock by user/IP/pair, progressive, reset on success, stuffing alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pynomaly_security.auth.lockout import (
    ACCOUNT_LOCKED,
    CREDENTIAL_STUFFING,
    LockoutManager,
)
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage import Store, create_store

from .conftest import Clock, Sinks


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    options: dict[str, Any] = {"clock": clock}
    if store_url.startswith("redis"):
        options["key_prefix"] = "pns-lock:"
    backend = create_store(store_url, **options)
    yield backend
    await backend.aclose()


def manager(store: Store, clock: Clock, sinks: Sinks, **kwargs: Any) -> LockoutManager:
    options: dict[str, Any] = {"max_attempts": 3, "window": 300, "lock_seconds": 60}
    options.update(kwargs)
    return LockoutManager(store, event_sink=sinks.event, clock=clock, **options)


@pytest.mark.anyio
async def test_locks_after_max_attempts_with_alert(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """The Nth failure locks the key, raises an alert, and check() reports it."""
    lockouts = manager(store, clock, sinks)
    statuses = [await lockouts.report_auth_failure("alice", "203.0.113.1") for _ in range(3)]
    assert [s.locked for s in statuses] == [False, False, True]
    assert statuses[-1].retry_after == 60
    status = await lockouts.check("alice", "203.0.113.1")
    assert status.locked and status.retry_after == 60  # the clock stands still
    assert [a.alert_type for a in sinks.alerts] == [ACCOUNT_LOCKED]


@pytest.mark.anyio
async def test_lock_expires(store: Store, clock: Clock, sinks: Sinks) -> None:
    """After the lock time the key is usable again (by the injected clock)."""
    lockouts = manager(store, clock, sinks)
    for _ in range(3):
        await lockouts.report_auth_failure("alice", "203.0.113.1")
    clock.now += 61
    assert (await lockouts.check("alice", "203.0.113.1")).locked is False


@pytest.mark.anyio
async def test_failures_outside_window_do_not_add_up(clock: Clock, sinks: Sinks) -> None:
    """Failures older than the window are forgotten (memory store only: Redis expires
    keys by its own clock, which a test cannot move)."""
    lockouts = manager(create_store("memory://", clock=clock), clock, sinks)
    for _ in range(2):
        await lockouts.report_auth_failure("alice", "203.0.113.1")
    clock.now += 301
    assert (await lockouts.report_auth_failure("alice", "203.0.113.1")).locked is False


@pytest.mark.anyio
async def test_success_resets_failures(store: Store, clock: Clock, sinks: Sinks) -> None:
    """A success resets the count, so N-1 failures, success, N-1 failures do not lock."""
    lockouts = manager(store, clock, sinks)
    for _ in range(2):
        await lockouts.report_auth_failure("alice", "203.0.113.1")
    await lockouts.report_auth_success("alice", "203.0.113.1")
    for _ in range(2):
        status = await lockouts.report_auth_failure("alice", "203.0.113.1")
    assert status.locked is False


@pytest.mark.anyio
async def test_progressive_lock_times(store: Store, clock: Clock, sinks: Sinks) -> None:
    """Each repeat lock doubles the time, up to the maximum."""
    lockouts = manager(store, clock, sinks, lock_seconds=60, max_lock_seconds=200)
    durations = []
    for _ in range(3):
        for _ in range(3):
            status = await lockouts.report_auth_failure("alice", "203.0.113.1")
        durations.append(status.retry_after)
        clock.now += status.retry_after + 1
    assert durations == [60, 120, 200]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("by", "other_ip_locked", "other_user_locked"),
    [
        pytest.param("user", True, False, id="by-user"),
        pytest.param("ip", False, True, id="by-ip"),
        pytest.param("user_and_ip", False, False, id="by-pair"),
    ],
)
async def test_lock_parameters(
    store: Store,
    clock: Clock,
    sinks: Sinks,
    by: str,
    other_ip_locked: bool,
    other_user_locked: bool,
) -> None:
    """What a lock covers follows lockout_by (same user elsewhere, other user same IP)."""
    lockouts = manager(store, clock, sinks, by=by)
    for _ in range(3):
        await lockouts.report_auth_failure("alice", "203.0.113.1")
    assert (await lockouts.check("alice", "203.0.113.1")).locked
    assert (await lockouts.check("alice", "198.51.100.2")).locked is other_ip_locked
    assert (await lockouts.check("bob", "203.0.113.1")).locked is other_user_locked


@pytest.mark.anyio
async def test_username_case_does_not_dodge_the_lock(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """ALICE, alice and Alice are one lock key."""
    lockouts = manager(store, clock, sinks, by="user")
    for name in ("ALICE", "alice", "Alice"):
        await lockouts.report_auth_failure(name, "203.0.113.1")
    assert (await lockouts.check("aLiCe", None)).locked


@pytest.mark.anyio
async def test_admin_list_and_unlock(store: Store, clock: Clock, sinks: Sinks) -> None:
    """Current locks list with key, user and IP; unlock lifts the lock and its history."""
    lockouts = manager(store, clock, sinks)
    for _ in range(3):
        await lockouts.report_auth_failure("alice", "203.0.113.1")
    [record] = await lockouts.list_lockouts()
    assert (record.username, record.ip, record.failures) == ("alice", "203.0.113.1", 3)
    assert record.key == lockouts.lock_key("alice", "203.0.113.1")
    assert await lockouts.unlock(record.key) is True
    assert await lockouts.unlock(record.key) is False
    assert (await lockouts.check("alice", "203.0.113.1")).locked is False
    assert await lockouts.list_lockouts() == []


@pytest.mark.anyio
async def test_stuffing_one_ip_many_users(store: Store, clock: Clock, sinks: Sinks) -> None:
    """One IP failing for many user names raises one credential-stuffing alert."""
    lockouts = manager(store, clock, sinks, stuffing_threshold=5, max_attempts=100)
    for i in range(8):
        await lockouts.report_auth_failure(f"user{i}", "203.0.113.66")
    alerts = [a for a in sinks.alerts if a.alert_type == CREDENTIAL_STUFFING]
    assert len(alerts) == 1
    assert alerts[0].source_ip == "203.0.113.66"
    assert alerts[0].details["pattern"] == "one_ip_many_users"


@pytest.mark.anyio
async def test_stuffing_one_user_many_ips(store: Store, clock: Clock, sinks: Sinks) -> None:
    """One user name failing from many IPs raises its own alert."""
    lockouts = manager(store, clock, sinks, stuffing_threshold=5, max_attempts=100)
    for i in range(6):
        await lockouts.report_auth_failure("alice", f"198.51.100.{i}")
    [alert] = [a for a in sinks.alerts if a.alert_type == CREDENTIAL_STUFFING]
    assert alert.user_id == "alice"
    assert alert.details["pattern"] == "one_user_many_ips"


@pytest.mark.anyio
async def test_store_down_fails_closed(clock: Clock, sinks: Sinks) -> None:
    """With the store unreachable, check() refuses and says the store is unavailable."""
    store = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    try:
        status = await manager(store, clock, sinks).check("alice", "203.0.113.1")
        assert status.locked and status.unavailable
        open_status = await manager(store, clock, sinks, failure_policy="fail_open").check(
            "a", None
        )
        assert not open_status.locked
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"by": "cookie"}, "lockout_by", id="bad-by"),
        pytest.param({"max_attempts": 0}, "max_attempts", id="zero-attempts"),
        pytest.param({"lock_seconds": 100, "max_lock_seconds": 10}, "max_lock_seconds", id="max"),
    ],
)
def test_bad_configuration(
    clock: Clock, sinks: Sinks, kwargs: dict[str, Any], message: str
) -> None:
    """Invalid lockout options fail at construction."""
    with pytest.raises(ConfigurationError, match=message):
        manager(create_store("memory://"), clock, sinks, **kwargs)
