"""The decisions' store over every state backend (memory, SQLite, Redis, PostgreSQL):
idempotent add, escalation of repeat offenders, the allow-list and the acting admin,
revert with its grace period, the bound, expiry on a fake clock, and the version
counter the workers poll (issue 16, item 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pynomaly_security.decisions import AllowList, DecisionRefused, DecisionStore
from pynomaly_security.decisions.index import DecisionIndex
from pynomaly_security.decisions.model import DecisionAction, DecisionScope, parse_duration
from pynomaly_security.storage import StorageRegistry
from pynomaly_security.storage.memory import MemoryStore
from tests.storage.test_monitor_state import STATE_BACKENDS


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state-decisions.db'}"
    if request.param == "redis":
        return str(request.getfixturevalue("redis_db"))
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def decisions(state_url: str, clock: Clock) -> AsyncIterator[DecisionStore]:
    """A store on the backend's state; counters and grace keys in a memory store with the
    test's clock (on Redis: in Redis, real time, which no test here waits for)."""
    async with StorageRegistry() as registry:
        options = {"key_prefix": "decisions-test:"} if state_url.startswith("redis") else {}
        state = registry.state(state_url, **options)
        store = (
            registry.store(state_url, **options)
            if state_url.startswith("redis")
            else MemoryStore(clock=clock)
        )
        await registry.start()
        yield DecisionStore(
            state,  # type: ignore[arg-type]
            store,
            max_decisions=5,
            default_ttl=60.0,
            escalation_window=3600.0,
            max_ttl=300.0,
            grace_period=600.0,
            allow=AllowList(["10.0.0.0/8"], ["/health"]),
            clock=clock,
        )


@pytest.mark.anyio
async def test_the_same_decision_twice_is_one_decision_extended(
    decisions: DecisionStore, clock: Clock
) -> None:
    """A ban of one address made twice (a playbook step run again) is one decision
    whose expiry is the later of the two; the version moves with each change."""
    before = (await decisions.versions()).get("decisions", 0)
    first = await decisions.add("ip", "203.0.113.7", "ban", origin="playbook:bf", ttl=60)
    clock.now += 30
    again = await decisions.add("ip", "203.0.113.7", "ban", origin="playbook:bf", ttl=60)
    assert again.decision_id == first.decision_id
    assert again.expires_at == clock.now + 60
    assert [d.decision_id for d in await decisions.live()] == [first.decision_id]
    assert (await decisions.versions())["decisions"] == before + 2
    other = await decisions.add("ip", "203.0.113.7", "throttle", origin="playbook:bf")
    assert other.decision_id != first.decision_id


@pytest.mark.anyio
async def test_values_are_normalized_and_bad_input_is_refused_with_a_reason(
    decisions: DecisionStore,
) -> None:
    """An IPv6 address in long form and a CIDR with host bits name the normal form;
    a bad address, origin, action or ttl is a ValueError saying what is wrong."""
    six = await decisions.add("ip", "2001:DB8:0:0:0:0:0:1", "ban")
    assert six.value == "2001:db8::1"
    net = await decisions.add("cidr", "198.51.100.77/24", "read_only")
    assert net.value == "198.51.100.0/24"
    with pytest.raises(ValueError, match="not an IP address"):
        await decisions.add("ip", "not-an-ip", "ban")
    with pytest.raises(ValueError, match="origin"):
        await decisions.add("user", "bob", "ban", origin="evil")
    with pytest.raises(ValueError):
        await decisions.add("user", "bob", "explode")
    with pytest.raises(ValueError, match="ttl"):
        await decisions.add("user", "bob", "ban", ttl=10_000)
    with pytest.raises(ValueError, match="SHA-256"):
        await decisions.add("api_key", "sk_live_secret", "ban")


@pytest.mark.anyio
async def test_repeat_offenders_get_doubling_durations_up_to_the_cap(
    decisions: DecisionStore, clock: Clock
) -> None:
    """Automatic decisions on one address, each after the last expired: 60, 120, 240 s,
    then the 300 s cap; a manual decision is not escalated."""
    durations = []
    for _ in range(4):
        made = await decisions.add("ip", "203.0.113.9", "ban", origin="correlation:brute_force")
        durations.append(made.expires_at - made.created_at)
        clock.now = made.expires_at + 1
    assert durations == [60, 120, 240, 300]
    manual = await decisions.add("ip", "203.0.113.10", "ban")
    assert manual.expires_at - manual.created_at == 60 and manual.repeats == 0


@pytest.mark.anyio
async def test_the_allow_list_and_the_acting_admin_are_never_targets(
    decisions: DecisionStore,
) -> None:
    """An address or network in an admin network, a health path, the acting admin's
    user id or address: each refused with its code, nothing stored."""
    cases = [
        (("ip", "10.1.2.3", "ban"), {}, "allow_listed"),
        (("cidr", "10.0.0.0/16", "ban"), {}, "allow_listed"),
        (("cidr", "0.0.0.0/0", "ban"), {}, "allow_listed"),
        (("route", "/health", "ban"), {}, "allow_listed"),
        (("user", "alice", "ban"), {"actor": "alice"}, "acting_admin"),
        (("cidr", "192.0.2.0/24", "ban"), {"actor_ip": "192.0.2.8"}, "acting_admin"),
        (("ip", "192.0.2.8", "ban"), {"actor_ip": "192.0.2.8"}, "acting_admin"),
    ]
    for args, kwargs, code in cases:
        with pytest.raises(DecisionRefused) as refused:
            await decisions.add(*args, **kwargs)  # type: ignore[arg-type]
        assert refused.value.code == code, args
    assert await decisions.live() == []


@pytest.mark.anyio
async def test_existing_decisions_on_a_newly_allowed_network_leave_the_index(
    decisions: DecisionStore, clock: Clock
) -> None:
    """A ban made before its network was allow-listed is left out of the index built
    with the new allow-list (the allow-list applies to existing decisions too)."""
    await decisions.add("ip", "192.0.2.50", "ban")
    live = await decisions.live()
    assert not DecisionIndex.build(live, now=clock()).empty
    allowed = AllowList(["192.0.2.0/24"])
    assert DecisionIndex.build(live, allow=allowed, now=clock()).empty


@pytest.mark.anyio
async def test_a_manual_revert_gives_a_grace_period_to_automatic_decisions(
    decisions: DecisionStore, clock: Clock
) -> None:
    """After an admin reverts a ban, the correlation rules may not ban that address
    again for the grace period; an admin still may; unknown ids revert nothing."""
    ban = await decisions.add("ip", "203.0.113.20", "ban", origin="correlation:scanner_sweep")
    reverted = await decisions.revert(ban.decision_id, actor="alice")
    assert reverted is not None and await decisions.live() == []
    assert await decisions.revert(ban.decision_id) is None
    assert await decisions.revert("dec-000000000000000000000000") is None
    with pytest.raises(DecisionRefused) as refused:
        await decisions.add("ip", "203.0.113.20", "ban", origin="correlation:scanner_sweep")
    assert refused.value.code == "grace_period"
    manual = await decisions.add("ip", "203.0.113.20", "ban")
    assert manual.origin == "manual"


@pytest.mark.anyio
async def test_the_grace_period_ends(clock: Clock) -> None:
    """Past the grace period an automatic decision is made again (fake clock)."""
    async with StorageRegistry() as registry:
        store = DecisionStore(
            registry.state("memory://"),  # type: ignore[arg-type]
            MemoryStore(clock=clock),
            grace_period=600.0,
            clock=clock,
        )
        ban = await store.add("user", "mallory", "ban", origin="playbook:ato")
        await store.revert(ban.decision_id)
        clock.now += 601
        again = await store.add("user", "mallory", "ban", origin="playbook:ato")
        assert again.live(clock())


@pytest.mark.anyio
async def test_the_bound_refuses_one_more_and_expired_ones_free_room(
    decisions: DecisionStore, clock: Clock
) -> None:
    """Five decisions in force (the bound): a sixth is refused with ``limit``; once
    they expired (fake clock), new ones are made; expired ones are not listed."""
    for n in range(5):
        await decisions.add("user", f"user{n}", "ban", ttl=60)
    with pytest.raises(DecisionRefused) as refused:
        await decisions.add("user", "user5", "ban")
    assert refused.value.code == "limit"
    clock.now += 61
    assert await decisions.live() == []
    assert await decisions.find(scope=DecisionScope.USER) == []
    made = await decisions.add("user", "user5", "ban")
    found = await decisions.find(scope=DecisionScope.USER, value=" user5 ")
    assert [d.decision_id for d in found] == [made.decision_id]
    assert found[0].action is DecisionAction.BAN


def test_durations_read_as_the_cli_writes_them() -> None:
    """90, 90s, 15m, 24h, 7d; anything else is a ValueError."""
    assert [parse_duration(t) for t in ("90", "90s", "15m", "24h", "7d")] == [
        90,
        90,
        900,
        86_400,
        604_800,
    ]
    for bad in ("", "0", "1w", "-5m", "24 h x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.anyio
async def test_lists_are_stored_reloaded_only_when_changed_and_removed(
    state_url: str, clock: Clock
) -> None:
    """A list imported on the backend reads back with the same answers; a reload with
    the previous lists reuses the unchanged one (not decoded again); a replaced list
    is decoded anew; a removed one is gone; bad names and actions are refused."""
    from pynomaly_security.intel import IntelStore, IPRangeSet

    async with StorageRegistry() as registry:
        options = {"key_prefix": "intel-test:"} if state_url.startswith("redis") else {}
        state = registry.state(state_url, **options)
        await registry.start()
        intel = IntelStore(state, clock=clock)  # type: ignore[arg-type]
        before = (await state.tallies("decisions")).get("intel", 0)
        await intel.import_list(
            "drop", IPRangeSet(["192.0.2.0/24", "2001:db8::/32"]), action="ban", ttl=60
        )
        await intel.import_list("tor", IPRangeSet(["203.0.113.5"]), action="flag", ttl=60)
        first = await intel.load({})
        assert first["drop"].ranges.contains("2001:db8::7")
        assert not first["drop"].ranges.contains("198.51.100.1")
        await intel.import_list("tor", IPRangeSet(["203.0.113.6"]), action="flag", ttl=60)
        second = await intel.load(first)
        assert second["drop"] is first["drop"] and second["tor"] is not first["tor"]
        assert second["tor"].ranges.contains("203.0.113.6")
        assert await intel.remove("tor") and not await intel.remove("tor")
        assert [s["name"] for s in await intel.summaries()] == ["drop"]
        assert (await state.tallies("decisions"))["intel"] == before + 4
        with pytest.raises(ValueError, match="list name"):
            await intel.import_list("a b", IPRangeSet(), action="ban", ttl=60)
        with pytest.raises(ValueError, match="action"):
            await intel.import_list("x", IPRangeSet(), action="throttle", ttl=60)


@pytest.mark.anyio
async def test_a_long_decision_outlives_many_short_ones(
    decisions: DecisionStore, clock: Clock
) -> None:
    """The collection keeps twice the bound of documents, expired ones included; a
    long ban made first is never the document dropped while short ones come and go."""
    long_ban = await decisions.add("user", "keeper", "ban", ttl=300)
    for n in range(14):
        await decisions.add("user", f"short{n}", "ban", ttl=1)
        clock.now += 2
    assert [d.decision_id for d in await decisions.live()] == [long_ban.decision_id]
