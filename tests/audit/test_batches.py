"""Access batches: many per-request access records sealed as one chain record."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.audit import AuditLogger, SecurityEventType
from pynomaly_security.audit.batch import MAX_ROWS, MAX_SPAN_US, open_batch, split_batches
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores.base import AuditStore, SealedRecord
from pynomaly_security.crypto import KeyRing
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry

Settings = Callable[..., SecuritySettings]


def _store(url: str) -> AuditStore:
    """An audit store on a registry of its own (closed with the store)."""
    return StorageRegistry().audit_log(url)


def _chain(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return [(int(s), str(k)) for s, k in conn.execute("SELECT seq, kind FROM audit_records")]


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _request(
    audit: AuditLogger, n: int, ts: float, user: str | None = None, status: int = 200
) -> None:
    audit.log_request(
        method="GET", path=f"/r/{n}", status_code=status, duration_ms=1.0, request_id=f"rid-{n}",
        client_ip=f"192.0.2.{n % 250}", user_id=user, timestamp=ts,
    )  # fmt: skip


@pytest.mark.anyio
async def test_many_requests_become_few_chain_records(db_url: str, master_key: str) -> None:
    """Thousands of access records take one chain record per MAX_ROWS; all read back."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    db = Path(db_url.removeprefix("sqlite:///"))
    total = MAX_ROWS * 2 + 10
    async with AuditLogger(_store(db_url), keys, flush_interval_ms=200) as audit:
        for n in range(total):
            _request(audit, n, 1_000.0 + n / 1000, user=f"u{n % 3}" if n % 2 else None)
    chain = _chain(db)
    assert [kind for _, kind in chain] == ["access_batch"] * 3
    async with AuditLogger(_store(db_url), keys) as audit:
        rows = await audit.query(limit=total + 1)
        result = await audit.verify()
    assert result.ok, result.message
    assert result.count == 3
    assert [r["path"] for r in rows] == [f"/r/{n}" for n in range(total)]
    assert rows[1]["user_id"] == "u1" and rows[1]["source_ip"] == "192.0.2.1"
    assert rows[2]["user_id"] is None and rows[2]["source_ip"] == "192.0.2.2"
    assert {r["kind"] for r in rows} == {"request"}
    assert rows[-1]["seq"] == 3 and rows[-1]["batch_index"] == 9
    assert {r["duration_ms"] for r in rows} == {1.0}  # stored as 1000 µs (format v2)


def test_version_1_batches_still_read() -> None:
    """Batches written before durations were whole microseconds read back unchanged."""
    keys = AuditKeys(KeyRing.from_secret(None, development_mode=True))
    rec = SealedRecord(1, 5, "access_batch", "http_request", "info", ",,", None, None,
                       keys.key_id, b"", None, b"\0" * 32, b"\0" * 32)  # fmt: skip
    row = [5, "GET", "/r", 200, 1.25, "rid", None, "192.0.2.1"]
    for version, stored, expected in ((1, 1.25, 1.25), (2, 1250, 1.25)):
        body = {"v": version, "subjects": [], "rows": [[*row[:4], stored, *row[5:]]]}
        ((ts_us, fields),) = open_batch(keys, rec, body, {}, lambda r, part: b"")
        assert ts_us == 5 and fields["duration_ms"] == expected and fields["path"] == "/r"


@pytest.mark.anyio
async def test_query_interleaves_access_rows_and_events_in_time_order(
    db_url: str, master_key: str
) -> None:
    """A batch spanning security events is merged into them by time; filters and paging apply
    to the expanded rows."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    clock = [100.0]
    store = _store(db_url)
    async with AuditLogger(store, keys, flush_interval_ms=200, clock=lambda: clock[0]) as audit:
        _request(audit, 1, 100.0, user="ann")
        clock[0] = 101.0
        await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, "e1", user_id="ann")
        _request(audit, 2, 102.0)
        _request(audit, 3, 104.0, user="bob", status=503)
        clock[0] = 103.0
        await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "e2", user_id="bob")
        await audit.flush()  # the test drives the batch window
        _request(audit, 4, 105.0, user="ann")
        await audit.flush()

        def names(rows: list[dict[str, object]]) -> list[object]:
            return [r.get("path") or r.get("message") for r in rows]

        assert [kind for _, kind in _chain(Path(db_url.removeprefix("sqlite:///")))] == [
            "access_batch",
            "security",
            "access_batch",
            "security",
            "access_batch",
        ]  # fmt: skip  (a security event's commit takes the queued access rows along)
        assert names(await audit.query()) == ["/r/1", "e1", "/r/2", "e2", "/r/3", "/r/4"]
        assert names(await audit.query(since=101.5, until=104.5)) == ["/r/2", "e2", "/r/3"]
        assert names(await audit.query(user_id="ann")) == ["/r/1", "e1", "/r/4"]
        assert names(await audit.query(user_id="bob")) == ["e2", "/r/3"]
        assert names(await audit.query(event_type="http_request")) == [
            "/r/1", "/r/2", "/r/3", "/r/4",
        ]  # fmt: skip
        assert names(await audit.query(event_type="http_request", limit=2, offset=1)) == [
            "/r/2", "/r/3",
        ]  # fmt: skip
        assert names(await audit.query(limit=2, offset=3)) == ["e2", "/r/3"]
        assert names(await audit.query(standard="PCI_DSS")) == ["e1", "e2"]
        [failed] = [r for r in await audit.query() if r.get("status_code") == 503]
        assert failed["level"] == "error"
        assert (await audit.verify()).ok


@pytest.mark.anyio
async def test_since_finds_rows_late_in_an_old_batch(db_url: str, master_key: str) -> None:
    """A batch is found by rows up to MAX_SPAN_US after its oldest; longer spans are cut."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    span = MAX_SPAN_US / 1_000_000
    async with AuditLogger(_store(db_url), keys, flush_interval_ms=200) as audit:
        _request(audit, 1, 1_000.0)
        _request(audit, 2, 1_000.0 + span - 1)
        _request(audit, 3, 1_000.0 + span + 5)  # too far from the first: a new batch
        await audit.flush()
        assert [r["path"] for r in await audit.query(since=1_000.0 + span - 2)] == [
            "/r/2",
            "/r/3",
        ]
    assert [k for _, k in _chain(Path(db_url.removeprefix("sqlite:///")))] == ["access_batch"] * 2


@pytest.mark.anyio
async def test_erase_subject_shreds_batched_rows(db_url: str, master_key: str) -> None:
    """After erase_subject, that user's rows in a batch read [erased] (user id and IP), other
    rows of the same batch stay readable, and the chain verifies."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    db = Path(db_url.removeprefix("sqlite:///"))
    async with AuditLogger(_store(db_url), keys, flush_interval_ms=200) as audit:
        _request(audit, 1, 10.0, user="erin")
        _request(audit, 2, 11.0, user="frank")
        _request(audit, 3, 12.0, user="erin")
        _request(audit, 4, 13.0)
        await audit.flush()
        assert [r["path"] for r in await audit.query(user_id="erin")] == ["/r/1", "/r/3"]
        assert await audit.erase_subject("erin") == 1
        rows = await audit.query(event_type="http_request")
        assert [(r["user_id"], r["source_ip"]) for r in rows] == [
            ("[erased]", "[erased]"),
            ("frank", "192.0.2.2"),
            ("[erased]", "[erased]"),
            (None, "192.0.2.4"),
        ]
        assert rows[0]["path"] == "/r/1"
        assert "erin" not in str(await audit.query())
        assert (await audit.verify()).ok
    raw = _read(db)
    for secret in (b"erin", b"frank", b"/r/1", b"192.0.2."):
        assert secret not in raw


def _verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--db", f"sqlite:///{db}"])
    return code, capsys.readouterr().out.strip()


@pytest.fixture
def batched(
    tmp_path: Path, settings_for: Settings, monkeypatch: pytest.MonkeyPatch, master_key: str
) -> Path:
    """Records 1-2 security events, 3 an access batch, 4 a security event; all checkpointed."""
    db = tmp_path / "audit.db"

    async def populate() -> None:
        settings = settings_for(f"sqlite:///{db}", audit_flush_interval_ms=200)
        async with AuditLogger.from_settings(settings) as audit:
            for i in range(2):
                await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"e{i}")
            for n in range(50):
                _request(audit, n, 1_000.0 + n, user="ann" if n % 2 else None)
            await audit.flush()
            await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "e3")

    asyncio.run(populate())
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", master_key)
    assert [k for _, k in _chain(db)] == ["security", "security", "access_batch", "security"]
    return db


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        pytest.param(
            # Byte 41 becomes another value (setting it to 0x00 alone would change
            # nothing when the ciphertext already had 0x00 there: 1 run in 256).
            "UPDATE audit_records SET payload = substr(payload, 1, 40)"
            " || CASE WHEN substr(payload, 41, 1) = x'00' THEN x'01' ELSE x'00' END"
            " || substr(payload, 42) WHERE seq = 3",
            "edited",
            id="payload-byte",
        ),
        pytest.param(
            "UPDATE audit_records SET personal = personal || x'20' WHERE seq = 3",
            "edited",
            id="personal-blob",
        ),
        pytest.param(
            "UPDATE audit_records SET ts_us = ts_us + 1 WHERE seq = 3", "edited", id="batch-time"
        ),
        pytest.param("DELETE FROM audit_records WHERE seq = 3", "deleted", id="batch-deleted"),
    ],
)
def test_tampering_inside_a_batch_is_named(
    batched: Path, capsys: pytest.CaptureFixture[str], statement: str, problem: str
) -> None:
    """Changing any byte of a batch record (or removing it) is named at its sequence number."""
    assert _verify(batched, capsys)[0] == 0
    with sqlite3.connect(batched) as conn:
        conn.execute(statement)
    code, out = _verify(batched, capsys)
    assert code == 1
    assert out.startswith(f"FAIL seq=3 {problem}:"), out


def test_export_expands_batches(batched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """audit export prints one JSON line per access row, filtered by user."""
    import json

    assert main(["audit", "export", "--db", f"sqlite:///{batched}", "--user-id", "ann"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [f"/r/{n}" for n in range(1, 50, 2)]
    assert {r["user_id"] for r in rows} == {"ann"}


@pytest.mark.anyio
async def test_retention_prunes_batches_with_their_segment(db_url: str, master_key: str) -> None:
    """A batch inside a checkpointed segment is pruned whole; the rest verifies."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    day = 86_400.0
    clock = [0.0]
    async with AuditLogger(
        _store(db_url), keys, flush_interval_ms=200, checkpoint_every=2,
        retention_days=30, clock=lambda: clock[0],
    ) as audit:  # fmt: skip
        for n in range(5):
            _request(audit, n, 0.0, user="old")
        await audit.flush()
        await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "old")
        clock[0] = 40 * day
        _request(audit, 9, clock[0], user="new")
        await audit.flush()
        assert await audit.prune_expired() == 2
        rows = await audit.query()
        assert [r["path"] for r in rows] == ["/r/9"]
        assert await audit.query(user_id="old") == []
        result = await audit.verify()
    assert result.ok, result.message
    assert result.pruned_through == 2


def test_batch_forged_with_a_rehashed_chain_is_named(
    batched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editing a batch and re-hashing the chain from it fails to authenticate under the key."""
    import dataclasses

    from pynomaly_security.audit.chain import record_hash
    from pynomaly_security.audit.stores._sql import COLUMNS, to_record

    with sqlite3.connect(batched) as conn:
        conn.execute("UPDATE audit_records SET level = 'error' WHERE seq = 3")
        rows = [to_record(r) for r in conn.execute(f"SELECT {COLUMNS} FROM audit_records")]
        prev = rows[1].hash
        for rec in rows[2:]:
            fixed = dataclasses.replace(rec, prev_hash=prev)
            prev = record_hash(fixed)
            conn.execute(
                "UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?",
                (fixed.prev_hash, prev, rec.seq),
            )
    code, out = _verify(batched, capsys)
    assert code == 1
    assert out.startswith("FAIL seq=3 forged_record:"), out


def test_export_of_a_store_without_the_subject_index(
    batched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only export of a store lacking the index table (older version) still works,
    scanning every batch for the user."""
    with sqlite3.connect(batched) as conn:
        conn.execute("DROP TABLE audit_record_subjects")
    assert main(["audit", "export", "--db", f"sqlite:///{batched}", "--user-id", "ann"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 25
    assert main(["audit", "export", "--db", f"sqlite:///{batched}"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 53


@pytest.mark.anyio
async def test_a_restarted_logger_accepts_access_records(db_url: str, master_key: str) -> None:
    """After aclose, start() opens the queue again (aclose had closed it)."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    audit = AuditLogger(_store(db_url), keys, flush_interval_ms=200)
    await audit.start()
    await audit.aclose()
    await audit.start()
    _request(audit, 1, 5.0)
    await audit.aclose()
    await audit.start()
    assert [r["path"] for r in await audit.query()] == ["/r/1"]
    await audit.aclose()


def test_split_batches_cuts_by_count_and_span() -> None:
    """Greedy cuts: each batch starts at the oldest remaining row and holds at most
    MAX_ROWS rows within MAX_SPAN_US of it; nothing is lost or reordered."""
    import itertools
    import random

    rng = random.Random(7)
    rows = []
    ts = 1_000_000_000
    for i in range(MAX_ROWS * 3 + 17):
        ts += rng.choice((1, 10, 1_000, MAX_SPAN_US // 3, MAX_SPAN_US + 1))
        rows.append((ts, "GET", "/", 200, 5, f"r{i}", None, "192.0.2.1"))
    shuffled = rows[:]
    rng.shuffle(shuffled)
    batches = split_batches(shuffled)
    assert [row for batch in batches for row in batch] == rows
    for batch in batches:
        assert 1 <= len(batch) <= MAX_ROWS
        assert batch[-1][0] - batch[0][0] <= MAX_SPAN_US
    for before, after in itertools.pairwise(batches):
        # Greedy: the next row did not fit (too many rows, or too far in time).
        assert len(before) == MAX_ROWS or after[0][0] - before[0][0] > MAX_SPAN_US


@pytest.mark.anyio
async def test_non_ascii_rows_read_back(db_url: str, master_key: str) -> None:
    """Rows with non-ASCII text (written as UTF-8 JSON) and with a lone surrogate (the
    batch is then written with escapes) both read back as logged, and the chain verifies."""
    keys = AuditKeys(KeyRing.from_secret(master_key))
    paths = ["/café/ü", "/p\udc80", "/plain"]
    async with AuditLogger(_store(db_url), keys, flush_interval_ms=200) as audit:
        audit.log_request(method="GET", path=paths[0], status_code=200, duration_ms=1.0,
                          request_id="rid-é", user_id="zoë", timestamp=1_000.0)  # fmt: skip
        await audit.flush()
        for n, path in enumerate(paths[1:], 1):
            audit.log_request(method="GET", path=path, status_code=200, duration_ms=1.0,
                              request_id=f"rid-{n}", timestamp=1_000.0 + n)  # fmt: skip
    async with AuditLogger(_store(db_url), keys) as audit:
        rows = await audit.query(limit=10)
        result = await audit.verify()
    assert result.ok, result.message
    assert [r["path"] for r in rows] == paths
    assert rows[0]["request_id"] == "rid-é" and rows[0]["user_id"] == "zoë"
