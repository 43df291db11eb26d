"""Attempts reserved before the password check (issue 12, items 9 and 10), on
every store: concurrent reservations never pass the limit, a void attempt is
given back, a success resets the user-and-address count but not the account's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pynomaly_security.auth.lockout import DISTRIBUTED_GUESSING, LockoutManager
from pynomaly_security.storage import Store, create_store

from .conftest import Clock, Sinks


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    options: dict[str, Any] = {"clock": clock}
    if store_url.startswith("redis"):
        options["key_prefix"] = "pns-reserve:"
    backend = create_store(store_url, **options)
    yield backend
    await backend.aclose()


def manager(store: Store, clock: Clock, sinks: Sinks, **kwargs: Any) -> LockoutManager:
    options: dict[str, Any] = {"max_attempts": 3, "window": 300, "lock_seconds": 60}
    options.update(kwargs)
    return LockoutManager(store, event_sink=sinks.event, clock=clock, **options)


@pytest.mark.anyio
async def test_concurrent_reservations_never_pass_the_limit(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """Twenty reservations at once for one user and address: exactly three are held."""
    lockouts = manager(store, clock, sinks)
    held = await asyncio.gather(*(lockouts.reserve(["alice"], "192.0.2.1") for _ in range(20)))
    granted = [h for h in held if not h.status.locked]
    assert len(granted) == 3
    # The refused ones hold nothing: failing the three granted locks the pair.
    for reservation in granted:
        await lockouts.settle(reservation, "failure")
    assert (await lockouts.check("alice", "192.0.2.1")).locked
    assert [a.alert_type for a in sinks.alerts] == ["brute_force"]


@pytest.mark.anyio
async def test_void_gives_the_attempt_back_and_success_resets(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """A void attempt (never checked) costs nothing; a success clears the pair's
    failures; settling twice is a no-op."""
    lockouts = manager(store, clock, sinks)
    for _ in range(5):
        reservation = await lockouts.reserve(["alice"], "192.0.2.1")
        assert not reservation.status.locked
        await lockouts.settle(reservation, "void")
        await lockouts.settle(reservation, "failure")  # already settled: ignored
    failed = await lockouts.reserve(["alice"], "192.0.2.1")
    await lockouts.settle(failed, "failure")
    ok = await lockouts.reserve(["alice"], "192.0.2.1")
    assert ok.status.failures == 1
    await lockouts.settle(ok, "success")
    assert (await lockouts.check("alice", "192.0.2.1")).failures == 0


@pytest.mark.anyio
async def test_the_account_budget_spans_addresses(store: Store, clock: Clock, sinks: Sinks) -> None:
    """Failures for one account from many addresses stop at account_max_attempts,
    with one distributed_guessing alert; the owner's success does not refill it."""
    lockouts = manager(store, clock, sinks, account_max_attempts=4, account_window=600)
    for i in range(4):
        reservation = await lockouts.reserve(["bob"], f"198.51.100.{i}")
        assert not reservation.status.locked
        await lockouts.settle(reservation, "failure")
    refused = await lockouts.reserve(["bob"], "203.0.113.9")
    assert refused.status.locked and refused.status.retry_after == 600
    assert [a.alert_type for a in sinks.alerts] == [DISTRIBUTED_GUESSING]
    assert sinks.alerts[0].user_id == "bob"
    # Other accounts are untouched.
    assert not (await lockouts.reserve(["carol"], "203.0.113.9")).status.locked


@pytest.mark.anyio
async def test_one_address_key_is_counted_once_per_attempt(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """With lockout_by=ip, an attempt naming two users takes one attempt of the
    address, not two."""
    lockouts = manager(store, clock, sinks, by="ip")
    for _ in range(3):
        reservation = await lockouts.reserve(["alice", "bob"], "192.0.2.1")
        assert not reservation.status.locked
        await lockouts.settle(reservation, "failure")
    assert (await lockouts.reserve(["alice"], "192.0.2.1")).status.locked


@pytest.mark.anyio
async def test_a_counter_left_below_zero_by_a_reset_race_still_reserves(
    store: Store, clock: Clock, sinks: Sinks
) -> None:
    """A success's reset while other guesses are held lets their give-backs drive the
    count below zero for a moment; a guess counted then (its increment answers 0) is
    reserved like any other, not a 500 (seen with fifty guesses on two workers)."""
    lockouts = manager(store, clock, sinks)
    key = f"lock:fail:{lockouts.lock_key('alice', '192.0.2.1')}"
    assert await store.incr(key, 300, -1) == -1
    reservation = await lockouts.reserve(["alice"], "192.0.2.1")
    assert not reservation.status.locked
    assert reservation.status.failures == 0
    await lockouts.settle(reservation, "void")
    assert await store.get_count(key) == 0  # the give-back never leaves it negative
