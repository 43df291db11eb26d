"""One contract suite over the SQLite and PostgreSQL audit stores.

The PostgreSQL half runs against the real server (``postgres_url`` fixture:
skipped locally when it is down, a failure under CI=true); each test gets its
own table prefix and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pynomaly_security._context import access_row
from pynomaly_security.audit import (
    AuditLogger,
    ComplianceStandard,
    SecurityEventType,
)
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores.postgres import PostgresAuditStore
from pynomaly_security.crypto import KeyRing
from pynomaly_security.storage import StorageRegistry

pytestmark = pytest.mark.anyio

StoreFactory = Callable[..., AuditLogger]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def make_logger(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, master_key: str
) -> AsyncIterator[StoreFactory]:
    """``make_logger(**options)``: loggers sharing one fresh store (one per worker)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made: list[AuditLogger] = []
    storage = StorageRegistry()  # every logger of the test on one pool, like one process

    def make(keys: AuditKeys | None = None, **options: object) -> AuditLogger:
        logger = AuditLogger(
            storage.audit_log(url, prefix=prefix),
            keys or AuditKeys(KeyRing.from_secret(master_key)),
            flush_interval_ms=10,
            **options,  # type: ignore[arg-type]
        )
        made.append(logger)
        return logger

    yield make
    if request.param == "postgres":
        store = storage.audit_log(url, prefix=prefix)
        assert isinstance(store, PostgresAuditStore)
        async with store:
            await store.drop()
    await storage.aclose()


async def test_round_trip_and_verify(make_logger: StoreFactory) -> None:
    """Records come back decrypted, in order, and the chain verifies."""
    async with make_logger(checkpoint_every=3) as audit:
        for i in range(10):
            await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, f"m{i}", user_id="u")
        audit.log_request(method="GET", path="/x", status_code=200, duration_ms=1.0)
        rows = await audit.query()
        assert [r["message"] for r in rows] == [f"m{i}" for i in range(10)]
    async with make_logger() as audit:
        result = await audit.verify()
        assert result.ok, result.message
        assert result.count == 11
        assert result.checkpoints == 11  # every commit is signed: ten events, one request


async def test_access_batches(make_logger: StoreFactory) -> None:
    """Access records are sealed per flush, found by user through the subject index,
    shredded per subject, pruned with their segment's index rows; the chain verifies."""
    async with make_logger(checkpoint_every=2) as audit:
        for i in range(30):
            audit.log_request(
                method="GET", path=f"/p{i}", status_code=200, duration_ms=0.5,
                client_ip="192.0.2.7", user_id=("ann", "bob", None)[i % 3], timestamp=50.0 + i,
            )  # fmt: skip
        await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, "x", user_id="bob")
        rows = await audit.query(user_id="ann", limit=100)
        assert [r["path"] for r in rows] == [f"/p{i}" for i in range(0, 30, 3)]
        assert await audit.erase_subject("ann") == 1
        rows = await audit.query(event_type="http_request", limit=100)
        assert len(rows) == 30
        assert {r["user_id"] for r in rows} == {"[erased]", "bob", None}
        bob = await audit.query(user_id="bob", since=60, limit=100)
        assert [r.get("path", r.get("message")) for r in bob] == [
            *(f"/p{i}" for i in range(10, 30, 3)),
            "x",
        ]
        result = await audit.verify()
        assert result.ok, result.message
        assert result.count == 3  # one batch, the event, the erasure record
        assert await audit.store.prune(1) == 1
        assert await audit.query(user_id="bob", event_type="http_request") == []


async def test_many_workers_keep_one_chain(make_logger: StoreFactory) -> None:
    """Four loggers (as four worker processes would) writing at once extend one chain."""
    workers = [make_logger() for _ in range(4)]
    for w in workers:
        await w.start()
    try:
        seqs = await asyncio.gather(
            *(
                w.log_security_event(SecurityEventType.ACCESS_DENIED, f"w{n}-{i}")
                for i in range(25)
                for n, w in enumerate(workers)
            )
        )
    finally:
        for w in workers:
            await w.aclose()
    assert sorted(seqs) == list(range(1, 101))
    async with make_logger() as audit:
        result = await audit.verify()
    assert result.ok, result.message
    assert result.count == 100


async def test_query_filters(make_logger: StoreFactory) -> None:
    """Time range, user, event type, standard and paging filter the records."""
    clock = [1_000.0]
    async with make_logger(clock=lambda: clock[0]) as audit:
        await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, "a", user_id="ann")
        clock[0] = 2_000.0
        await audit.log_security_event(SecurityEventType.CONFIG_CHANGE, "b", user_id="bob")
        clock[0] = 3_000.0
        await audit.log_security_event(
            SecurityEventType.DATA_EXPORT, "c", compliance_standards=[ComplianceStandard.GDPR]
        )
        assert [r["message"] for r in await audit.query(since=1_500, until=3_000)] == ["b"]
        assert [r["message"] for r in await audit.query(user_id="ann")] == ["a"]
        assert [r["message"] for r in await audit.query(event_type="config_change")] == ["b"]
        assert [r["message"] for r in await audit.query(standard="GDPR")] == ["c"]
        assert [r["message"] for r in await audit.query(standard=ComplianceStandard.SOX)] == [
            "a",
            "b",
        ]
        assert [r["message"] for r in await audit.query(limit=1, offset=1)] == ["b"]


async def test_erase_subject_shreds_but_chain_verifies(make_logger: StoreFactory) -> None:
    """After erasure the subject's personal fields read [erased]; the chain still verifies."""
    async with make_logger() as audit:
        await audit.log_security_event(
            SecurityEventType.LOGIN_SUCCESS, "hi", details={"username": "erin@x", "attempt": 2},
            user_id="erin", source_ip="192.0.2.5",
        )  # fmt: skip
        await audit.log_security_event(
            SecurityEventType.LOGIN_SUCCESS, "hi", details={"email": "f@x"}, user_id="frank"
        )
        before = await audit.query(user_id="erin")
        assert before[0]["details"] == {"attempt": 2, "username": "erin@x"}
        assert await audit.erase_subject("erin") == 1
        rows = await audit.query(event_type="login_success")
        assert rows[0]["user_id"] == "[erased]"
        assert rows[0]["source_ip"] == "[erased]"
        assert rows[0]["message"] == "hi"
        assert rows[0]["details"] == {"attempt": 2, "username": "[erased]"}
        assert rows[1]["user_id"] == "frank"
        assert rows[1]["details"] == {"email": "f@x"}
        assert [r["event_type"] for r in await audit.query(event_type="subject_erased")]
        assert "erin" not in str(await audit.query())
        assert (await audit.verify()).ok


async def test_retention_prunes_whole_checkpointed_segments(make_logger: StoreFactory) -> None:
    """Old records go only up to a signed checkpoint, which stays; verification passes."""
    day = 86_400.0
    clock = [0.0]
    async with make_logger(clock=lambda: clock[0], checkpoint_every=4, retention_days=30) as audit:
        for i in range(10):
            await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"old{i}")
        clock[0] = 40 * day
        await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "new")
        await audit.prune_expired()
        messages = [r["message"] for r in await audit.query()]
        result = await audit.verify()
    # Every security event is signed at its commit: the newest checkpoint older than
    # the retention is record 10's (the head record's checkpoint is never a prune point).
    assert messages == ["new"]
    assert result.ok, result.message
    assert result.pruned_through == 10


async def test_key_rotation_reads_history(make_logger: StoreFactory, master_key: str) -> None:
    """A new master key writes new records; the old key, kept as retired, reads old ones."""
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    async with make_logger() as audit:
        await audit.log_security_event(SecurityEventType.KEY_ROTATION, "before", user_id="kim")
    rotated = AuditKeys(KeyRing.from_secret(new_key, retired=(master_key,)))
    async with make_logger(keys=rotated) as audit:
        await audit.log_security_event(SecurityEventType.KEY_ROTATION, "after", user_id="kim")
        rows = await audit.query(user_id="kim")
        result = await audit.verify()
    assert [r["message"] for r in rows] == ["before", "after"]
    assert len({r["key_id"] for r in rows}) == 2
    assert result.ok, result.message


async def test_checkpoint_by_count_and_by_age(make_logger: StoreFactory) -> None:
    """Every commit is signed. A security event's checkpoint is anchored at once; access
    batches get interim checkpoints, each replacing the last, until N records or T seconds
    since the last anchored one make one anchored (kept)."""
    clock = [0.0]
    anchored: list[dict[str, object]] = []
    async with make_logger(
        clock=lambda: clock[0], checkpoint_every=4, checkpoint_seconds=10
    ) as audit:
        audit.register_checkpoint_handler(anchored.append)
        await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "n")
        assert [cp.seq for cp in await audit.store.checkpoints()] == [1]
        # The test drives commits and maintenance itself: no writer task beside it.
        await audit._writer.aclose()

        async def batch() -> list[int]:
            row = access_row(clock[0], "GET", "/", 200, 0.001, None, None, "192.0.2.1")
            await audit._commit([], [[row]])
            return [cp.seq for cp in await audit.store.checkpoints()]

        clock[0] = 5.0
        assert await batch() == [1, 2]  # interim
        assert await batch() == [1, 3]  # replaces the interim one
        assert await batch() == [1, 4]
        assert await batch() == [1, 5]  # 4 records since the anchored one: anchored
        assert await batch() == [1, 5, 6]
        clock[0] = 20.0
        assert await batch() == [1, 5, 7]  # 15 s since the anchored one: anchored
        assert await batch() == [1, 5, 7, 8]  # interim
        clock[0] = 40.0
        await audit._maintain()  # an idle app: the interim head is anchored when due
        assert [cp.seq for cp in await audit.store.checkpoints()] == [1, 5, 7, 8]
    assert [a["seq"] for a in anchored] == [1, 5, 7, 8]
