"""``SecurityPolicyEngine`` over every state backend (memory, SQLite, Redis,
PostgreSQL): immutable versions with hash, parent and author; activate, shadow,
rollback and remove; a second engine on the same state sees a change after its poll;
shadow disagreements counted and listed; replay of a candidate (issue 17, item 2-4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security.policy import Principal, RequestFacts, Resource, load_policy
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.policy.store import PolicyConflict
from pynomaly_security.storage import StorageRegistry
from tests.storage.test_monitor_state import STATE_BACKENDS

ALICE = Principal("alice", roles=frozenset({"staff"}))
ITEM = Resource(path="/items/3")
SATURDAY = 1_796_472_000.0  # 2026-12-05 12:00 UTC
MONDAY = SATURDAY + 2 * 86_400

OPEN: dict[str, Any] = {
    "id": "items",
    "rules": [{"id": "all", "effect": "allow", "principals": ["*"], "actions": ["*"]}],
}
OFFICE_ONLY: dict[str, Any] = {
    "id": "items",
    "rules": [
        *OPEN["rules"],
        {
            "id": "late-delete",
            "effect": "deny",
            "principals": ["*"],
            "actions": ["DELETE"],
            "resources": ["/items/*"],
            "unless": [
                {
                    "time": {
                        "start": "09:00",
                        "end": "18:00",
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                    }
                },
                {"user": {"roles": ["admin"], "mfa": True}},
            ],
        },
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = SATURDAY

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state-policies.db'}"
    if request.param == "redis":
        return str(request.getfixturevalue("redis_db"))
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
async def engines(
    state_url: str,
) -> AsyncIterator[tuple[SecurityPolicyEngine, SecurityPolicyEngine]]:
    """Two engines on one state (two workers); on memory:// they share the process's state."""
    clock = Clock()
    async with StorageRegistry() as registry:
        options = {"key_prefix": "policies-test:"} if state_url.startswith("redis") else {}
        state = registry.state(state_url, **options)
        await registry.start()
        one = SecurityPolicyEngine(state, clock=clock, shared=True)
        two = SecurityPolicyEngine(state, clock=clock, shared=True)
        yield one, two


def delete(engine: SecurityPolicyEngine, principal: Principal = ALICE) -> bool:
    facts = RequestFacts(now=engine.clock(), method="DELETE", request_id="r1")
    return engine.evaluate(principal, "DELETE", ITEM, facts).allowed


@pytest.mark.anyio
async def test_versions_activation_shadow_rollback(
    engines: tuple[SecurityPolicyEngine, SecurityPolicyEngine],
) -> None:
    """v1 open, v2 office hours: drafts enforce nothing; v1 activated allows; v2 in
    shadow disagrees on a Saturday delete (counted, listed) without refusing; v2
    activated refuses and names its version; the other worker agrees after its poll;
    rollback to v1 allows again; versions are immutable with hash, parent and author."""
    one, two = engines
    v1 = await one.add_policy(OPEN, author="alice")
    assert (v1.version, v1.parent, v1.author, v1.status.value) == (1, None, "alice", "draft")
    assert not delete(one)  # a draft enforces nothing: default deny
    await one.activate("items", 1, author="alice")
    assert delete(one)
    v2 = await one.update_policy(OFFICE_ONLY, author="bob")
    assert (v2.version, v2.parent) == (2, 1) and v2.hash != v1.hash
    assert delete(one)  # a new draft changes nothing

    await one.shadow_version("items", 2, author="bob")
    assert delete(one)  # shadow: not enforced
    assert one.stats.shadow_disagreements == 1
    listed = one.stats.disagreements[-1]
    assert listed["request_id"] == "r1" and listed["active"]["allowed"] is True
    assert listed["shadow"] == {
        "allowed": False,
        "policy_id": "items",
        "rule_id": "late-delete",
        "version": 2,
    }

    report = await one.replay("items", 2)
    assert report.flipped >= 1 and report.flips[0]["would_allow"] is False

    await one.activate("items", 2, author="bob")
    facts = RequestFacts(now=one.clock(), method="DELETE")
    refused = one.evaluate(ALICE, "DELETE", ITEM, facts)
    assert (refused.allowed, refused.version, refused.rule_id) == (False, 2, "late-delete")
    assert delete(one, Principal("root", roles=frozenset({"admin"}), mfa=True))
    assert one.shadow is None  # the candidate became the active version

    assert await two.refresh()  # the other worker's poll
    assert not delete(two)

    statuses = {v.version: v.status.value for v in await one.store.versions("items")}
    assert statuses == {1: "retired", 2: "active"}
    with pytest.raises(PolicyConflict) as info:
        await one.rollback("items", 2)
    assert info.value.code == "not_earlier"
    await one.rollback("items", 1, author="alice")
    assert delete(one)
    got = await one.get_policy("items")
    assert got is not None and got.version == 1 and got.status.value == "active"
    again = await one.get_policy("items", version=2)
    assert again is not None and again.body == load_policy(OFFICE_ONLY)

    assert await one.remove_policy("items")
    assert not delete(one) and await one.get_policy("items") is None
    assert not await one.remove_policy("items")


@pytest.mark.anyio
async def test_conflicts(engines: tuple[SecurityPolicyEngine, SecurityPolicyEngine]) -> None:
    """An existing id is a conflict; unknown policies and versions are not found; a
    removed id may be created again, at a new version number."""
    one, _ = engines
    await one.add_policy(OPEN)
    for call, code in [
        (one.add_policy(OPEN), "exists"),
        (one.update_policy({**OPEN, "id": "nope"}), "not_found"),
        (one.activate("items", 9), "not_found"),
        (one.rollback("nope", 1), "not_found"),
        (one.replay("items", 7), "not_found"),
    ]:
        with pytest.raises(PolicyConflict) as info:
            await call
        assert info.value.code == code
    await one.remove_policy("items")
    made = await one.add_policy(OPEN)
    assert made.version == 2 and made.parent == 1


@pytest.mark.anyio
async def test_bounds_refuse_rather_than_drop() -> None:
    """At the version bound (and the policy bound) a change is refused with ``limit``:
    the collection never drops a version that may be in force."""
    async with StorageRegistry() as registry:
        state = registry.state("memory://")
        await registry.start()
        engine = SecurityPolicyEngine(state, max_versions=3, max_policies=2)
        await engine.add_policy(OPEN)
        await engine.activate("items", 1)
        await engine.update_policy(OPEN)
        await engine.update_policy(OPEN)
        with pytest.raises(PolicyConflict) as info:
            await engine.update_policy(OPEN)
        assert info.value.code == "limit"
        assert (await engine.get_policy("items", 1)) is not None
    async with StorageRegistry() as registry:
        state = registry.state("memory://")
        await registry.start()
        engine = SecurityPolicyEngine(state, max_policies=2)
        await engine.add_policy(OPEN)
        await engine.add_policy({**OPEN, "id": "two"})
        with pytest.raises(PolicyConflict) as info:
            await engine.add_policy({**OPEN, "id": "three"})
        assert info.value.code == "limit"


@pytest.mark.anyio
async def test_statistics_and_decision_log_are_shared(
    engines: tuple[SecurityPolicyEngine, SecurityPolicyEngine],
) -> None:
    """Two workers decide on one state: once both flushed, each reads the same totals,
    per-rule counts (with last matched) and disagreements; ``replay`` on one worker
    runs over the decisions both logged, within [since, until]; a flush with nothing
    new adds nothing."""
    one, two = engines
    await one.add_policy(OPEN)
    await one.activate("items", 1)
    await one.update_policy(OFFICE_ONLY)
    await one.shadow_version("items", 2)
    await two.refresh()
    assert delete(one)  # Saturday 12:00: v2 in shadow would refuse
    one.clock.now += 60  # type: ignore[attr-defined]  # the shared Clock
    assert delete(two) and delete(two)
    await one.ledger.flush()
    await two.ledger.flush()
    await two.ledger.flush()  # nothing pending: nothing added twice
    seen = [await engine.ledger.read() for engine in (one, two)]
    assert seen[0].totals == seen[1].totals
    assert seen[0].totals["evaluations"] == 3 and seen[0].totals["allows"] == 3
    assert seen[0].totals["shadow_disagreements"] == 3
    assert seen[0].rule_rows() == seen[1].rule_rows()
    rows = {(r["version"], r["rule_id"]): r for r in seen[0].rule_rows()}
    assert rows[(1, "all")]["allows"] == 3 and rows[(1, "all")]["last_matched"] == SATURDAY + 60
    assert rows[(2, "late-delete")]["disagreements"] == 3
    assert [d["shadow"]["rule_id"] for d in seen[1].disagreements] == ["late-delete"] * 3

    everything = await one.replay("items", 2)
    assert (everything.replayed, everything.flipped) == (3, 3)
    late = await one.replay("items", 2, since=SATURDAY + 30)
    early = await two.replay("items", 2, until=SATURDAY + 30)
    assert (late.replayed, early.replayed) == (2, 1)
    assert early.flips[0]["principal"] == "alice" and early.flips[0]["request_id"] == "r1"


@pytest.mark.anyio
@pytest.mark.redis
async def test_on_redis_an_activation_reaches_the_other_worker_by_message(redis_db: str) -> None:
    """With polls an hour apart, the other worker still rebuilds after an activation:
    the change is published (Redis pub/sub) and its listener refreshes. A bounded
    number of short waits, never a timed assertion."""
    import asyncio

    async with StorageRegistry() as registry:
        state = registry.state(redis_db, key_prefix="policies-notify:")
        await registry.start()
        one = SecurityPolicyEngine(state, shared=True, poll_seconds=3600)
        two = SecurityPolicyEngine(state, shared=True, poll_seconds=3600)
        await one.start()
        await two.start()
        try:
            await one.add_policy(OPEN)
            await one.activate("items", 1)  # published; two may not be subscribed yet
            for _ in range(100):
                if delete(two):
                    break
                await asyncio.sleep(0.05)
                await state.publish("policies")  # what a later change would send
            assert delete(two), "the other worker never learned of the activation"
            assert two.active.versions == {"items": 1}
        finally:
            await one.aclose()
            await two.aclose()
