"""The monitor-state capabilities (documents, logs, tallies), one contract run
against every backend that has them (memory, SQLite, Redis, PostgreSQL): what the
monitor and the user tracker rely on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage import StorageRegistry
from pynomaly_security.storage.base import (
    DocumentStore,
    LogStore,
    MonitorState,
    TallyStore,
    missing_capability,
)

STATE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """memory://, a SQLite file in tmp_path, the real Redis (flushed around the test),
    or the real PostgreSQL in a schema of the test's own."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if request.param == "redis":
        return str(request.getfixturevalue("redis_db"))
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
async def store(state_url: str) -> AsyncIterator[MonitorState]:
    options: dict[str, object] = {}
    if state_url.startswith("redis"):
        options["key_prefix"] = "pns-state-test:"
    async with StorageRegistry() as storage:
        yield storage.state(state_url, **options)


def _alert(n: int, level: str, *, acknowledged: bool = False) -> dict[str, Any]:
    return {
        "alert_id": f"a{n}",
        "threat_level": level,
        "acknowledged": acknowledged,
        "details": {"findings": [], "n": n, "path": "/é"},
        "timestamp": 1_700_000_000.123456 + n,
    }


@pytest.mark.anyio
class TestDocuments:
    def _alerts(self, store: MonitorState, keep: int = 100) -> Any:
        assert isinstance(store, DocumentStore)
        return store.documents("t-alerts", indexed=("threat_level", "acknowledged"), keep=keep)

    async def test_put_get_round_trip(self, store: MonitorState) -> None:
        """A document comes back as stored (floats, empty lists, non-ASCII text included)."""
        alerts = self._alerts(store)
        await alerts.put("a1", _alert(1, "high"))
        assert await alerts.get("a1") == _alert(1, "high")
        assert await alerts.get("nope") is None

    async def test_find_filters_newest_first_and_limits(self, store: MonitorState) -> None:
        """find() returns matching documents newest first, at most ``limit``."""
        alerts = self._alerts(store)
        for n, level in enumerate(["high", "low", "high", "critical", "high"]):
            await alerts.put(f"a{n}", _alert(n, level))
        assert [d["alert_id"] for d in await alerts.find()] == ["a4", "a3", "a2", "a1", "a0"]
        high = await alerts.find({"threat_level": "high"}, limit=2)
        assert [d["alert_id"] for d in high] == ["a4", "a2"]
        assert await alerts.find({"threat_level": "medium"}) == []

    async def test_update_is_compare_and_set(self, store: MonitorState) -> None:
        """update() applies only when ``only_if`` holds and re-indexes the document;
        an unknown id is None."""
        alerts = self._alerts(store)
        await alerts.put("a1", _alert(1, "high"))
        await alerts.put("a2", _alert(2, "high"))
        done = await alerts.update(
            "a1", {"acknowledged": True, "acknowledged_at": 5.5}, only_if={"acknowledged": False}
        )
        assert done is not None and done["acknowledged"] is True and done["acknowledged_at"] == 5.5
        again = await alerts.update(
            "a1", {"acknowledged": True, "acknowledged_at": 9.0}, only_if={"acknowledged": False}
        )
        assert again is not None and again["acknowledged_at"] == 5.5  # the first one stands
        assert await alerts.update("nope", {"acknowledged": True}) is None
        active = await alerts.find({"acknowledged": False})
        assert [d["alert_id"] for d in active] == ["a2"]
        assert await alerts.count({"acknowledged": False}, group_by="threat_level") == {"high": 1}
        assert await alerts.count(group_by="acknowledged") == {True: 1, False: 1}

    async def test_add_inserts_only_an_absent_id(self, store: MonitorState) -> None:
        """add() writes a new id and refuses an existing one without touching it."""
        alerts = self._alerts(store)
        assert await alerts.add("a1", _alert(1, "high")) is True
        assert await alerts.add("a1", _alert(2, "low")) is False
        assert await alerts.get("a1") == _alert(1, "high")
        assert await alerts.count(group_by="threat_level") == {"high": 1}

    async def test_bounded_oldest_dropped(self, store: MonitorState) -> None:
        """Beyond ``keep`` the oldest documents go, from queries and counts too."""
        alerts = self._alerts(store, keep=3)
        for n in range(5):
            await alerts.put(f"a{n}", _alert(n, "low"))
        assert [d["alert_id"] for d in await alerts.find()] == ["a4", "a3", "a2"]
        assert await alerts.get("a0") is None
        assert await alerts.count(group_by="threat_level") == {"low": 3}

    async def test_only_indexed_fields_are_queried(self, store: MonitorState) -> None:
        """A query on a field that is not indexed is a configuration error, not a scan."""
        alerts = self._alerts(store)
        with pytest.raises(ConfigurationError, match="not an indexed field"):
            await alerts.find({"alert_id": "a1"})
        with pytest.raises(ConfigurationError, match="not an indexed field"):
            await alerts.count(group_by="alert_id")

    async def test_same_name_same_collection(self, store: MonitorState) -> None:
        """Two callers naming one collection share it (a second monitor on the store)."""
        await self._alerts(store).put("a1", _alert(1, "high"))
        assert await self._alerts(store).get("a1") is not None


@pytest.mark.anyio
class TestLogs:
    async def test_streams_are_bounded_newest_first(self, store: MonitorState) -> None:
        """Each stream keeps its newest entries; the least recently appended stream goes."""
        assert isinstance(store, LogStore)
        logs = store
        log = logs.log("t-activity", max_entries=3, max_streams=2)
        await log.append([("alice", [[1, "a"], [2, "b"]]), ("bob", [[1, "x"]])])
        await log.append([("alice", [[3, "c"], [4, "d"]])])
        assert [list(e) for e in await log.read("alice")] == [[4, "d"], [3, "c"], [2, "b"]]
        assert [list(e) for e in await log.read("alice", limit=1)] == [[4, "d"]]
        await log.append([("carol", [[1, "z"]])])  # bob is the least recently appended
        assert await log.read("bob") == []
        assert await log.streams() == 2
        assert await logs.log("t-activity", max_entries=3, max_streams=2).read("carol") != []


@pytest.mark.anyio
async def test_tallies_add_up(store: MonitorState) -> None:
    """Tallies add deltas (negative too) and read back as a mapping."""
    assert isinstance(store, TallyStore)
    tallies = store
    assert await tallies.tallies("t-metrics") == {}
    await tallies.add_tallies("t-metrics", {"requests": 3, "failed_logins": 1})
    await tallies.add_tallies("t-metrics", {"requests": 2})
    await tallies.add_tallies("t-metrics", {})
    assert await tallies.tallies("t-metrics") == {"requests": 5, "failed_logins": 1}


def test_a_store_without_the_capability_is_refused_by_name() -> None:
    """A monitor or tracker built on a store lacking a capability fails at construction,
    saying which."""
    from pynomaly_security.monitor import SecurityMonitor, UserTracker

    with pytest.raises(ConfigurationError, match="alerts needs a store with DocumentStore"):
        SecurityMonitor(store=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="activity needs a store with LogStore"):
        UserTracker(store=object())  # type: ignore[arg-type]
    assert "x needs a store with TallyStore" in str(missing_capability(object(), TallyStore, "x"))


@pytest.mark.anyio
async def test_a_log_takes_any_text(store: MonitorState) -> None:
    """A stream name or entry holding a lone surrogate (a JSON login body can carry
    one as the user name) is stored and read back, not an encoding error."""
    assert isinstance(store, LogStore)
    log = store.log("t-odd", max_entries=3, max_streams=3)
    odd = "mallory\ud800"
    await log.append([(odd, [[1, odd]])])
    assert [list(e) for e in await log.read(odd)] == [[1, odd]]


@contextlib.asynccontextmanager
async def _second(state_url: str, store: MonitorState) -> AsyncIterator[MonitorState]:
    """Another worker's view of ``store``: its own registry (pool, connection), except
    for memory, which one process alone sees."""
    if state_url == "memory://":
        yield store
        return
    options: dict[str, object] = {}
    if state_url.startswith("redis"):
        options["key_prefix"] = "pns-state-test:"
    async with StorageRegistry() as storage:
        yield storage.state(state_url, **options)


@pytest.mark.anyio
async def test_an_alert_is_acknowledged_once_under_concurrency(
    store: MonitorState, state_url: str
) -> None:
    """Twenty acknowledgements at once, from two connections: the first one's time stands,
    and every caller gets the document with that one time."""
    async with _second(state_url, store) as other:
        mine = store.documents("t-alerts", indexed=("threat_level", "acknowledged"), keep=10)
        theirs = other.documents("t-alerts", indexed=("threat_level", "acknowledged"), keep=10)
        await mine.put("a1", _alert(1, "high"))
        answers = await asyncio.gather(
            *(
                (mine if n % 2 else theirs).update(
                    "a1",
                    {"acknowledged": True, "acknowledged_at": float(n)},
                    only_if={"acknowledged": False},
                )
                for n in range(20)
            )
        )
        times = {a["acknowledged_at"] for a in answers if a is not None}
        assert len(times) == 1 and len(answers) == 20
        assert (await theirs.get("a1")) == {
            **_alert(1, "high"),
            "acknowledged": True,
            "acknowledged_at": times.pop(),
        }
        assert await mine.count(group_by="acknowledged") == {True: 1}


@pytest.mark.anyio
async def test_one_add_of_an_id_lands_under_concurrency(
    store: MonitorState, state_url: str
) -> None:
    """Twenty adds of one id at once, from two connections: exactly one lands, and a
    compare-and-set on a token answers each caller the document its own step left."""
    async with _second(state_url, store) as other:
        mine = store.documents("t-claims", indexed=("threat_level",), keep=10)
        theirs = other.documents("t-claims", indexed=("threat_level",), keep=10)
        landed = await asyncio.gather(
            *((mine if n % 2 else theirs).add("c1", {"n": n, "rev": "r0"}) for n in range(20))
        )
        assert landed.count(True) == 1
        answers = await asyncio.gather(
            *(
                (mine if n % 2 else theirs).update("c1", {"rev": f"r{n}"}, only_if={"rev": "r0"})
                for n in range(1, 21)
            )
        )
        won = [n for n, a in zip(range(1, 21), answers, strict=True) if a and a["rev"] == f"r{n}"]
        assert len(won) == 1


@pytest.mark.anyio
async def test_concurrent_tallies_and_appends_all_land(store: MonitorState, state_url: str) -> None:
    """Workers adding tallies and appending to one stream at once lose nothing."""
    async with _second(state_url, store) as other:
        await asyncio.gather(
            *(
                (store if n % 2 else other).add_tallies("t-metrics", {"b": 1, "a": 2})
                for n in range(20)
            )
        )
        assert await other.tallies("t-metrics") == {"a": 40, "b": 20}
        logs = [s.log("t-activity", max_entries=100, max_streams=5) for s in (store, other)]
        await asyncio.gather(*(logs[n % 2].append([("alice", [[n]])]) for n in range(20)))
        assert sorted(e[0] for e in await logs[0].read("alice")) == list(range(20))
        assert await logs[1].streams() == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://postgres@127.0.0.1:1/test", id="postgres-down"),
        pytest.param("sqlite:///{tmp}/missing-dir/state.db", id="sqlite-unwritable"),
    ],
)
async def test_an_unreachable_state_backend_is_a_storage_error(url: str, tmp_path: Path) -> None:
    """A database that cannot be reached fails each call with StorageError (which the
    monitor logs and the admin routes answer 503), never with the driver's exception."""
    from pynomaly_security.exceptions import StorageError

    state = StorageRegistry().state(url.format(tmp=tmp_path))
    alerts = state.documents("alerts", indexed=("threat_level",), keep=10)
    with pytest.raises(StorageError):
        await alerts.find()
    with pytest.raises(StorageError):
        await state.add_tallies("monitor", {"requests": 1})
