"""The integration guide's audit logging (../shared/seeds, "Audit Logging", "Compliance
Support", "Log Management", "Testing"), verbatim with only the import path changed:
``AuditLogger()`` from the environment, called synchronously; the records are read
back from the store and the chain verified, as an auditor would."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security import (
    AuditLevel,
    AuditLogger,
    AuditReceipt,
    ComplianceStandard,
    SecurityEvent,
    SecurityEventType,
    audit_action,
    audit_context,
    defaults,
    load_settings,
)
from pynomaly_security.audit import AuditEvent


def _trail(db: Path) -> tuple[list[dict[str, Any]], bool]:
    """Every record of the audit database and whether its chain verifies (read with a
    logger of its own, as another process would: the master key is the environment's)."""

    async def read() -> tuple[list[dict[str, Any]], bool]:
        async with AuditLogger.from_settings(load_settings()) as trail:
            records = await trail.query(limit=1000)
            return records, (await trail.verify()).ok

    assert db.exists()
    return asyncio.run(read())


class FakeSiemClient:
    """The outside world: a SIEM's client, collecting what it is sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def test_the_guide_example_runs_as_written(guide_env: Path) -> None:
    """Called as in the guide, without an event loop, each record is committed before the
    call returns; the correlated event carries the context's ids; the decorated
    coroutine's outcome is recorded; the compliance handler gets event objects."""
    siem_client = FakeSiemClient()

    # Initialize audit logger
    audit_logger = AuditLogger()

    # Example: Forward to external SIEM
    def forward_to_siem(event):  # type: ignore[no-untyped-def]
        if isinstance(event, SecurityEvent):
            # Send to SIEM system
            siem_client.send_event(event.dict())

    audit_logger.register_compliance_handler(
        ComplianceStandard.SOX,
        forward_to_siem
    )

    # Log security events
    audit_logger.log_security_event(
        event_type=SecurityEventType.AUTH_LOGIN_SUCCESS,
        message="User logged in successfully",
        level=AuditLevel.INFO,
        details={"user_id": "123", "ip_address": "192.168.1.100"},
        compliance_standards=["SOX", "GDPR"]
    )

    # Use audit context for correlated events
    with audit_context(
        correlation_id="req_12345",
        user_id="user_123",
        ip_address="192.168.1.100"
    ):
        # All audit events within this context will be correlated
        audit_logger.log_audit_event(
            event_type="data_access",
            action="read",
            resource="user_profile",
            message="User accessed profile data"
        )

    # Decorator for automatic action auditing
    @audit_action("update_profile", "user_profile")
    async def update_user_profile(user_id: str, data: dict):  # type: ignore[no-untyped-def,type-arg]
        # Function implementation
        pass

    audit_logger.log_security_event(
        event_type=SecurityEventType.DATA_ACCESS_READ,
        message="Patient data accessed",
        compliance_standards=[ComplianceStandard.HIPAA, ComplianceStandard.GDPR],
        details={"patient_id": "P12345", "accessed_fields": ["name", "dob"]}
    )

    asyncio.run(update_user_profile("user_123", {"name": "x"}))
    assert defaults.audit_logger() is audit_logger  # the decorator used this one
    defaults.reset()  # closes it: delivers what is queued for the SIEM

    records, verified = _trail(guide_env)
    assert verified
    login, read, patient, update = records
    assert (login["event_type"], login["message"], login["level"]) == (
        "login_success", "User logged in successfully", "info",
    )
    assert login["details"] == {"user_id": "123", "ip_address": "192.168.1.100"}
    assert login["standards"] == ["SOX", "GDPR"]
    assert (read["event_type"], read["action"], read["resource"]) == (
        "data_access", "read", "user_profile",
    )
    assert read["message"] == "User accessed profile data"
    assert (read["correlation_id"], read["user_id"], read["source_ip"]) == (
        "req_12345", "user_123", "192.168.1.100",
    )
    assert "correlation_id" not in patient and patient["user_id"] is None  # context is over
    assert patient["standards"] == ["HIPAA", "GDPR"]
    assert patient["details"] == {"patient_id": "P12345", "accessed_fields": ["name", "dob"]}
    assert (update["action"], update["resource"], update["outcome"]) == (
        "update_profile", "user_profile", "success",
    )
    # The SOX-tagged events reached the SIEM (the login explicitly, the data accesses by
    # the default compliance map), as dicts of the committed records; the patient event,
    # tagged HIPAA and GDPR only, did not.
    assert [e["seq"] for e in siem_client.events] == [login["seq"], read["seq"], update["seq"]]
    sent = siem_client.events[0]
    assert sent["event_type"] == "login_success" and sent["forwarded_for"] == "SOX"
    assert sent["controls"] == {"SOX": ["ITGC access to programs and data"]}


def test_audit_logging(guide_env: Path) -> None:
    """The guide's own test, as written, and the verification it leaves as a comment."""
    audit_logger = AuditLogger()
    audit_logger.log_security_event(
        SecurityEventType.AUTH_LOGIN_SUCCESS,
        "Test login",
        details={"user_id": "test"}
    )
    # Verify log was created
    # Outside an event loop the call returned once committed: its receipt is done.
    receipt = audit_logger.log_security_event(SecurityEventType.AUTH_LOGOUT, "bye")
    assert receipt.done() and receipt.seq == 2
    defaults.reset()
    [record, _], verified = _trail(guide_env)
    assert verified and record["message"] == "Test login" and record["level"] == "warning"


@pytest.mark.anyio
async def test_inside_a_running_loop_the_call_queues_and_returns(guide_env: Path) -> None:
    """On the logger's own loop a sync-style call only queues: the receipt is pending
    when the call returns (the loop never waited for the store), and the record is
    committed all the same, receipt awaited or not."""
    audit_logger = AuditLogger()
    async with audit_logger:
        receipt = audit_logger.log_security_event(
            event_type=SecurityEventType.AUTH_LOGIN_FAILURE, message="dropped receipt"
        )
        assert isinstance(receipt, AuditReceipt) and not receipt.done()
        with audit_context(correlation_id="c-1", user_id="u-9"):
            awaited = await audit_logger.log_audit_event(
                "read", "invoice:7", event_type=SecurityEventType.DATA_ACCESS_READ
            )
        assert receipt.done() and receipt.seq == 1 and awaited == 2
        async with audit_context(audit_logger, "export", "report:q3", correlation_id="c-2") as d:
            d["rows"] = 3
    records, verified = await asyncio.to_thread(_trail, guide_env)
    assert verified
    assert [r["message"] for r in records[:1]] == ["dropped receipt"]
    assert (records[1]["correlation_id"], records[1]["user_id"]) == ("c-1", "u-9")
    assert (records[2]["action"], records[2]["outcome"], records[2]["details"]) == (
        "export", "success", {"rows": 3},
    )
    assert records[2]["correlation_id"] == "c-2" and records[2]["user_id"] is None


@pytest.mark.anyio
async def test_a_self_started_logger_called_from_a_loop(guide_env: Path) -> None:
    """``AuditLogger()`` used in async code without being started starts itself in
    its background thread; the call hands the record over and returns, and awaiting
    the receipt gives the committed sequence number."""
    audit_logger = AuditLogger()
    receipt = audit_logger.log_security_event(SecurityEventType.SYSTEM_STARTUP, "up")
    assert await receipt == 1
    decorated = audit_action("charge", "payment")(_charge)
    assert await decorated(5) == 10
    # Reads run on the logger's own loop too (its store belongs to that loop).
    types = [r["event_type"] for r in await audit_logger.query()]
    assert types == ["system_startup", "audit_action"]
    assert (await audit_logger.verify()).ok
    await audit_logger.aclose()  # from this loop: closes its background thread's loop
    records, _ = await asyncio.to_thread(_trail, guide_env)
    assert [(r["event_type"], r.get("action")) for r in records] == [
        ("system_startup", None),
        ("audit_action", "charge"),
    ]


async def _charge(amount: int) -> int:
    return amount * 2


def test_a_sync_function_in_a_worker_thread_commits_before_returning(guide_env: Path) -> None:
    """A decorated sync function run in a thread without a loop (FastAPI's sync
    endpoints) records its failure, error type only, before the exception reaches the
    caller; ``audit_context`` with an action records the block's outcome."""

    @audit_action("refund", "payment")
    def refund(card: str) -> None:
        raise PermissionError(f"card {card}")

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            refund("4111111111111111")
        except PermissionError as exc:
            errors.append(exc)
        with audit_context(None, "export", "report:q3", user_id="u-2") as details:
            details["rows"] = 3

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 1
    defaults.reset()
    records, verified = _trail(guide_env)
    assert verified
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("refund", "failure"),
        ("export", "success"),
    ]
    assert records[0]["details"]["error_type"] == "PermissionError"
    assert "4111" not in str(records)
    assert records[1]["details"] == {"rows": 3} and records[1]["user_id"] == "u-2"


def test_compliance_events_are_security_events_with_dict_and_model_dump() -> None:
    """What a compliance handler receives is the one SecurityEvent class (from either
    namespace) with the export document as dict() and model_dump()."""
    from pynomaly_security import audit, monitor

    assert audit.SecurityEvent is monitor.SecurityEvent is SecurityEvent
    event = AuditEvent.from_document(
        {"seq": 3, "event_type": "login_failure", "level": "warning", "ts": 1.5,
         "user_id": "u", "source_ip": "192.0.2.1", "details": {"k": 1}}
    )  # fmt: skip
    assert isinstance(event, SecurityEvent)
    assert event.dict() == event.model_dump() and event.dict()["seq"] == 3
    assert (event.kind.value, event.user_id, event.details) == ("login_failure", "u", {"k": 1})
    copy = event.dict()
    copy["seq"] = 99
    assert event.dict()["seq"] == 3  # a handler may change its copy freely


def test_the_taxonomy_keeps_the_first_release_names() -> None:
    """Canonical guide names; the earlier names are aliases with the same stored value,
    so trails written before read and query unchanged; every type has its controls."""
    from pynomaly_security.audit import CONTROLS

    E = SecurityEventType
    assert E.LOGIN_SUCCESS is E.AUTH_LOGIN_SUCCESS and E.AUTH_LOGIN_SUCCESS == "login_success"
    assert E.DATA_ACCESS is E.DATA_ACCESS_READ and E("data_access").name == "DATA_ACCESS_READ"
    assert E.DATA_MODIFICATION is E.DATA_ACCESS_WRITE
    assert E.SUBJECT_ERASED is E.COMPLIANCE_SUBJECT_ERASED
    assert {member.name.split("_")[0] for member in E} == {
        "AUTH", "AUTHZ", "DATA", "SECURITY", "SYSTEM", "ADMIN", "INCIDENT", "COMPLIANCE", "AUDIT",
    }  # fmt: skip
    assert sorted(set(CONTROLS)) == sorted(member.value for member in E)


def test_compliance_standards_read_however_spelled() -> None:
    """The guide lists "PCI DSS" and "ISO27001"; users write "sox": one standard each,
    and an unknown one is still refused."""
    assert ComplianceStandard("sox") is ComplianceStandard.SOX
    pci = ComplianceStandard.PCI_DSS
    assert ComplianceStandard("PCI DSS") is ComplianceStandard("pci-dss") is pci
    assert ComplianceStandard("ISO 27001") is ComplianceStandard.ISO27001
    with pytest.raises(ValueError, match="'SOC2' is not a valid ComplianceStandard"):
        ComplianceStandard("SOC2")


def test_a_store_that_cannot_open_fails_each_call_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: with an audit database that cannot be opened, every guide-style call
    raises StorageError naming it (logged once as audit_start_failed), never hangs or
    passes silently; awaited in a loop, the receipt raises the same."""
    from pynomaly_security import StorageError

    from .conftest import MASTER_KEY

    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv(
        "PYNOMALY_SECURITY__AUDIT_DB_URL", f"sqlite:///{tmp_path / 'missing-dir' / 'a.db'}"
    )
    audit_logger = AuditLogger()
    for _ in range(2):
        with pytest.raises(StorageError, match="cannot open SQLite database"):
            audit_logger.log_security_event(SecurityEventType.AUTH_LOGOUT, "bye")

    async def in_a_loop() -> None:
        receipt = audit_logger.log_security_event(SecurityEventType.AUTH_LOGOUT, "bye")
        with pytest.raises(StorageError, match="cannot open SQLite database"):
            await receipt

    asyncio.run(in_a_loop())
