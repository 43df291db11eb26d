"""AuditLogger: committed security events, batched access records, context helpers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from pynomaly_security.audit import (
    AuditLevel,
    AuditLogger,
    ComplianceStandard,
    SecurityEventType,
)
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.settings import SecuritySettings

Settings = Callable[..., SecuritySettings]


def _rows(db_url: str) -> int:
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_records").fetchone()[0])


@pytest.mark.anyio
async def test_security_event_is_committed_before_return(audit: AuditLogger, db_url: str) -> None:
    """The row is on disk (visible to another connection) when the call returns."""
    seq = await audit.log_security_event(
        SecurityEventType.LOGIN_FAILURE, "bad password", AuditLevel.WARNING, {"attempt": 3},
        user_id="alice", source_ip="198.51.100.4",
    )  # fmt: skip
    assert seq == 1
    assert _rows(db_url) == 1
    [record] = await audit.query()
    assert record["event_type"] == "login_failure"
    assert record["message"] == "bad password"
    assert record["details"] == {"attempt": 3}
    assert record["user_id"] == "alice"
    assert record["source_ip"] == "198.51.100.4"
    assert "PCI_DSS" in record["standards"]
    assert "10.2.1.4" in record["controls"]["PCI_DSS"]


@pytest.mark.anyio
async def test_payload_is_encrypted_at_rest(audit: AuditLogger, db_url: str) -> None:
    """Neither the message, the details nor the user id appear in the database file."""
    await audit.log_security_event(
        SecurityEventType.DATA_EXPORT, "exported-report-xyz", details={"card": "4111111111111111"},
        user_id="carol@example.com",
    )  # fmt: skip
    await audit.aclose()
    raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()  # noqa: ASYNC240
    for secret in (b"exported-report-xyz", b"4111111111111111", b"carol@example.com"):
        assert secret not in raw
    await audit.start()


@pytest.mark.anyio
async def test_concurrent_security_events_share_commits(audit: AuditLogger) -> None:
    """Many concurrent writers all commit, with distinct consecutive sequence numbers."""
    seqs = await asyncio.gather(
        *(audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"n{i}") for i in range(100))
    )
    assert sorted(seqs) == list(range(1, 101))
    assert (await audit.verify()).ok


@pytest.mark.anyio
async def test_access_records_are_flushed_on_close(db_url: str, settings_for: Settings) -> None:
    """log_request is sync and queues; aclose writes everything, as one batch record."""
    logger = AuditLogger.from_settings(settings_for(db_url, audit_flush_interval_ms=200))
    await logger.start()
    for i in range(50):
        logger.log_request(method="GET", path=f"/items/{i}", status_code=200, duration_ms=1.5)
    await logger.aclose()
    assert _rows(db_url) == 1
    await logger.start()
    rows = await logger.query(limit=100)
    await logger.aclose()
    assert [r["path"] for r in rows] == [f"/items/{i}" for i in range(50)]
    assert {(r["kind"], r["seq"], r["duration_ms"]) for r in rows} == {("request", 1, 1.5)}


@pytest.mark.anyio
async def test_flush_commits_queued_records_now(db_url: str, settings_for: Settings) -> None:
    """flush() writes what log_request queued without waiting for the interval, and
    returns once it is in the store (no await runs between the calls below and the
    row counts, so the interval's timer cannot write them first)."""
    settings = settings_for(db_url, audit_flush_interval_ms=200)
    async with AuditLogger.from_settings(settings) as audit:
        for i in range(3):
            audit.log_request(method="GET", path=f"/f/{i}", status_code=200, duration_ms=1.0)
        assert _rows(db_url) == 0
        await audit.flush()
        assert _rows(db_url) == 1  # one access batch
        await audit.flush()  # nothing queued: nothing written
        assert _rows(db_url) == 1
        assert [r["path"] for r in await audit.query()] == ["/f/0", "/f/1", "/f/2"]


@pytest.mark.anyio
async def test_flush_takes_a_queue_longer_than_one_commit(
    db_url: str, settings_for: Settings
) -> None:
    """A queue longer than one commit takes (20,000 rows) is written whole by one flush."""
    settings = settings_for(db_url, audit_flush_interval_ms=200)
    async with AuditLogger.from_settings(settings) as audit:
        for i in range(20_001):
            audit.log_request(method="GET", path="/", status_code=200, duration_ms=1.0, timestamp=i)
        await audit.flush()
        assert len(await audit.query(limit=20_001)) == 20_001


@pytest.mark.anyio
async def test_flush_before_start_is_refused(db_url: str, settings_for: Settings) -> None:
    audit = AuditLogger.from_settings(settings_for(db_url))
    with pytest.raises(StorageError, match="the audit logger is not started"):
        await audit.flush()


@pytest.mark.anyio
async def test_audit_event_and_ambient_request_context(audit: AuditLogger) -> None:
    """Request id and client ip default to what tracking bound in structlog contextvars."""
    with structlog.contextvars.bound_contextvars(request_id="req-1", client_ip="192.0.2.9"):
        await audit.log_audit_event(
            "delete", "item:42", user_id="bob", compliance_standards=[ComplianceStandard.SOX]
        )
    [record] = await audit.query(user_id="bob")
    assert record["action"] == "delete"
    assert record["resource"] == "item:42"
    assert record["outcome"] == "success"
    assert record["request_id"] == "req-1"
    assert record["source_ip"] == "192.0.2.9"
    assert record["standards"] == ["SOX"]


@pytest.mark.anyio
async def test_audit_context_records_failure_type_only(audit: AuditLogger) -> None:
    """A failing block is recorded with its error type, never its message."""

    async def rotate() -> None:
        async with audit.audit_context("rotate", "key:payments") as details:
            details["step"] = "load"
            raise KeyError("secret-token-value")

    with pytest.raises(KeyError):
        await rotate()
    [record] = await audit.query()
    assert record["outcome"] == "failure"
    assert record["details"] == {"step": "load", "error_type": "KeyError"}
    assert "secret-token-value" not in str(record)


@pytest.mark.anyio
async def test_audit_action_decorates_sync_and_async(audit: AuditLogger) -> None:
    """Async calls, sync calls in a worker thread and failures are all recorded."""

    @audit.audit_action("charge", "payment")
    async def charge(card_number: str) -> str:
        return "ok"

    @audit.audit_action("refund", "payment")
    def refund(card_number: str) -> str:
        raise PermissionError("card 4111")

    assert await charge("4111111111111111") == "ok"
    with pytest.raises(PermissionError):
        await asyncio.to_thread(refund, "4111111111111111")
    records = await audit.query()
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("charge", "success"),
        ("refund", "failure"),
    ]
    assert records[1]["details"]["error_type"] == "PermissionError"
    assert "4111" not in str(records)


@pytest.mark.anyio
async def test_logging_before_start_is_an_error(db_url: str, settings_for: Settings) -> None:
    """A security event cannot be silently lost by an unstarted logger."""
    logger = AuditLogger.from_settings(settings_for(db_url))
    with pytest.raises(StorageError, match="not started"):
        await logger.log_security_event(SecurityEventType.LOGOUT, "bye")


def test_missing_master_key_outside_development_mode(db_url: str, settings_for: Settings) -> None:
    """Production without PYNOMALY_MASTER_KEY fails at construction, saying how to fix it."""
    with pytest.raises(ConfigurationError, match="keys generate"):
        AuditLogger.from_settings(settings_for(db_url, master_key=None))


@pytest.mark.anyio
async def test_development_mode_uses_an_ephemeral_key_with_a_warning(
    db_url: str, settings_for: Settings
) -> None:
    """Development mode without a key works and warns."""
    with structlog.testing.capture_logs() as logs:
        logger = AuditLogger.from_settings(
            settings_for(db_url, master_key=None, development_mode=True)
        )
    assert any(e["event"] == "master_key_missing_using_ephemeral_key" for e in logs)
    async with logger:
        await logger.log_security_event(SecurityEventType.CONFIG_CHANGE, "x")
    # A restart gets a new ephemeral key: the old record is unreadable, the trail verifies.
    restarted = AuditLogger.from_settings(
        settings_for(db_url, master_key=None, development_mode=True)
    )
    async with restarted:
        await restarted.log_security_event(SecurityEventType.CONFIG_CHANGE, "y")
        rows = await restarted.query()
        result = await restarted.verify()
    assert [r.get("message") for r in rows] == [None, "y"]
    assert rows[0]["payload"] == "[undecryptable]"
    assert result.ok, result.message
    # One per commit: the first signed by the previous run's key, the second by this one.
    assert result.checkpoints == 2


def test_bad_master_key_is_rejected(db_url: str, settings_for: Settings) -> None:
    """A key that is not 32 bytes of base64 is refused with the reason."""
    with pytest.raises(ConfigurationError, match="32 bytes"):
        AuditLogger.from_settings(settings_for(db_url, master_key="c2hvcnQ="))


@pytest.mark.anyio
async def test_in_memory_database(settings_for: Settings) -> None:
    """sqlite:///:memory: works (one connection on the store's thread)."""
    async with AuditLogger.from_settings(settings_for("sqlite:///:memory:")) as audit:
        await audit.log_security_event(SecurityEventType.LOGOUT, "bye", user_id="u")
        assert [r["message"] for r in await audit.query(user_id="u")] == ["bye"]
        assert (await audit.verify()).ok


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        pytest.param("flush_interval_ms", 500, "flush_interval_ms must be in 1..200", id="flush"),
        pytest.param("checkpoint_every", 0, "checkpoint_every must be >= 1", id="every"),
        pytest.param("retention_days", 0, "retention_days must be >= 1", id="retention"),
    ],
)
def test_bad_options_fail_at_construction(
    db_url: str, settings_for: Settings, option: str, value: int, message: str
) -> None:
    """Invalid options raise ConfigurationError naming the option and its range."""
    from pynomaly_security.audit.sealing import AuditKeys
    from pynomaly_security.crypto import KeyRing
    from pynomaly_security.storage import StorageRegistry

    keys = AuditKeys(KeyRing(bytes(32)))
    with pytest.raises(ConfigurationError, match=message):
        AuditLogger(StorageRegistry().audit_log(db_url), keys, **{option: value})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_sync_action_on_the_event_loop_is_recorded(audit: AuditLogger, db_url: str) -> None:
    """A sync decorated function called on the loop thread cannot block; its record still lands."""

    @audit.audit_action("reindex", "search")
    def reindex() -> int:
        return 3

    assert reindex() == 3
    await audit.aclose()
    await audit.start()
    [record] = await audit.query()
    assert (record["action"], record["outcome"]) == ("reindex", "success")


@pytest.mark.anyio
async def test_access_queue_is_bounded(db_url: str, master_key: str) -> None:
    """Beyond max_pending queued access records, new ones are dropped, never blocking."""
    from pynomaly_security.audit.sealing import AuditKeys
    from pynomaly_security.crypto import KeyRing
    from pynomaly_security.storage import StorageRegistry

    keys = AuditKeys(KeyRing.from_secret(master_key))
    store = StorageRegistry().audit_log(db_url)
    audit = AuditLogger(store, keys, max_pending=5, flush_interval_ms=200)
    await audit.start()
    for i in range(50):  # no await in between: the writer cannot drain meanwhile
        audit.log_request(method="GET", path=f"/{i}", status_code=200, duration_ms=0.1)
    await audit.aclose()
    await audit.start()
    assert [r["path"] for r in await audit.query()] == ["/0", "/1", "/2", "/3", "/4"]
    await audit.aclose()
