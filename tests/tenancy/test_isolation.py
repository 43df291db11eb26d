"""Isolation by construction (issue 21, item 2): the one key encoding is injective and
prefix-free for crafted tenant ids and user names; the scoped store and state keep
tenants apart on memory and the real Redis; un-namespaced use is refused; a lockout
in tenant A does not lock the same user name in tenant B."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.storage import StorageRegistry, create_store
from pynomaly_security.tenancy.context import (
    TenantScopeError,
    current_tenant,
    namespace,
    platform_scope,
    split_namespace,
    tenant_scope,
)
from pynomaly_security.tenancy.scoped import TenantScopedState, TenantScopedStore

# Ids and names built to collide under a naive "tenant:key" or "tenant|key" join.
CRAFTED = ["a", "a:b", "a|b", "a|", "|a", "t1:a|", "p|", "1:a", "", "a:b|c", "ab", "b"]


@given(st.text(), st.text(), st.text(), st.text())
def test_namespaced_keys_never_collide(t1: str, k1: str, t2: str, k2: str) -> None:
    """Two different (tenant, key) pairs never give one key, and each key decodes back."""
    assert split_namespace(namespace(t1) + k1) == (t1, k1)
    if (t1, k1) != (t2, k2):
        assert namespace(t1) + k1 != namespace(t2) + k2


def test_crafted_ids_and_names_are_distinct_keys() -> None:
    """Every pairing of crafted ids and user names is its own key, and no namespace is
    a prefix of another (a scan of one tenant cannot reach into another)."""
    keys = {namespace(t) + "lockout:user:" + u for t, u in itertools.product(CRAFTED, CRAFTED)}
    assert len(keys) == len(CRAFTED) ** 2
    for a, b in itertools.permutations(CRAFTED, 2):
        assert not namespace(b).startswith(namespace(a))


@pytest.mark.anyio
async def test_unscoped_use_is_a_programming_error() -> None:
    """Outside a tenant or platform scope every call refuses, whatever the method."""
    scoped = TenantScopedStore(create_store("memory://"))
    with pytest.raises(TenantScopeError):
        await scoped.put("k", "v")
    with pytest.raises(TenantScopeError):
        await scoped.incr("k", 10)
    with pytest.raises(TenantScopeError):
        await scoped.scan("")
    state = TenantScopedState(StorageRegistry().state("memory://"))
    with pytest.raises(TenantScopeError):
        await state.documents("alerts", indexed=(), keep=10).find()
    assert current_tenant() is None


@pytest.mark.anyio
async def test_store_keeps_tenants_apart(store_url: str) -> None:
    """Values, counters, windows, members, scans and batches of crafted tenants never
    mix, on memory and on the real Redis."""
    inner = create_store(store_url)
    await inner.start()
    scoped = TenantScopedStore(inner)
    try:
        for t in CRAFTED:
            with tenant_scope(t):
                await scoped.put("user:a|b", t)
                await scoped.incr("count", 60, amount=len(t) + 1)
                await scoped.add_member("seen", t, 60)
                await scoped.acquire_sliding_window("w", 100, 60, amount=len(t) + 1)
        for t in CRAFTED:
            with tenant_scope(t):
                assert await scoped.get("user:a|b") == t
                assert await scoped.get_count("count") == len(t) + 1
                assert await scoped.has_member("seen", t, 60)
                others = [o for o in CRAFTED if o != t]
                assert not any([await scoped.has_member("seen", o, 60) for o in others])
                assert [k for k, _ in await scoped.scan("user:")] == ["user:a|b"]
                got = await scoped.batch([("get_many", (["user:a|b", "nope"],))])
                assert got == [[t, None]]
                window = await scoped.get_sliding_window("w", 60)
                assert window[2] == len(t) + 1
        with platform_scope():
            assert await scoped.get("user:a|b") is None
    finally:
        await inner.aclose()


@pytest.mark.anyio
async def test_state_keeps_tenants_apart() -> None:
    """Documents, logs and tallies: each tenant its own collection, stream and tally."""
    state = TenantScopedState(StorageRegistry().state("memory://"))
    alerts = state.documents("alerts", indexed=("kind",), keep=2)
    activity = state.log("activity", max_entries=10, max_streams=10)
    for t in ("a", "a|b", "b"):
        with tenant_scope(t):
            for i in range(3):  # beyond keep=2: only this tenant's oldest goes
                await alerts.put(f"{t}-{i}", {"kind": "x", "tenant": t})
            await activity.append([("alice", [t])])
            await state.add_tallies("counters", {"requests": 1})
    for t in ("a", "a|b", "b"):
        with tenant_scope(t):
            found = await alerts.find({"kind": "x"})
            assert {d["tenant"] for d in found} == {t} and len(found) == 2
            assert await activity.read("alice") == [t]
            assert await state.tallies("counters") == {"requests": 1}


@pytest.mark.anyio
async def test_lockout_in_one_tenant_leaves_the_same_name_in_another(store_url: str) -> None:
    """Tenant A locks ``ali:ce`` after its failures; tenant B's ``ali:ce`` signs in."""
    inner = create_store(store_url)
    await inner.start()
    lockouts = LockoutManager(TenantScopedStore(inner), by="user", max_attempts=3)
    try:
        with tenant_scope("acme"):
            for _ in range(5):
                await lockouts.report_auth_failure("ali:ce", "198.51.100.1")
            assert (await lockouts.check("ali:ce", "198.51.100.1")).locked
            assert len(await lockouts.list_lockouts()) == 1
        with tenant_scope("globex"):
            assert not (await lockouts.check("ali:ce", "198.51.100.1")).locked
            assert await lockouts.list_lockouts() == []
    finally:
        await inner.aclose()
