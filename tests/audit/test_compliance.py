"""Compliance tagging and forwarding to SIEMs (the outside world is faked)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import structlog

from pynomaly_security.audit import (
    CONTROLS,
    AuditLevel,
    AuditLogger,
    ComplianceStandard,
    SecurityEventType,
    controls_for,
)
from pynomaly_security.audit.dispatch import HANDLER_FAILED
from pynomaly_security.audit.siem import SyslogHandler, WebhookHandler

pytestmark = pytest.mark.anyio


def test_every_event_type_maps_to_controls() -> None:
    """Each event type evidences PCI DSS 10.2, HIPAA 164.312(b), ISO A.8.15 and NIST AU-2/AU-9."""
    for event in SecurityEventType:
        table = CONTROLS[event.value]
        assert "164.312(b)" in table["HIPAA"]
        assert "A.8.15" in table["ISO27001"]
        assert {"AU-2", "AU-9"} <= set(table["NIST"])
        assert any(c.startswith("10.2") for c in table["PCI_DSS"])
    assert "Art. 17" in controls_for("subject_erased")["GDPR"]
    assert "ITGC change management" in controls_for("config_change")["SOX"]


async def test_webhook_receives_matching_events_only(audit: AuditLogger) -> None:
    """Events tagged with the registered standard are POSTed; others are not."""
    received: list[dict[str, object]] = []

    def collector(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Splunk token"
        received.append(json.loads(request.content))
        return httpx.Response(202)

    client = httpx.AsyncClient(transport=httpx.MockTransport(collector))
    webhook = WebhookHandler(
        "https://siem.example/collect", client=client, headers={"Authorization": "Splunk token"}
    )
    audit.register_compliance_handler(ComplianceStandard.PCI_DSS, webhook)
    await audit.log_security_event(
        SecurityEventType.LOGIN_FAILURE, "bad password", user_id="u1", source_ip="192.0.2.3"
    )
    await audit.log_security_event(
        SecurityEventType.DATA_EXPORT, "gdpr only", compliance_standards=[ComplianceStandard.GDPR]
    )
    await audit.aclose()  # delivers what is queued
    await client.aclose()
    assert len(received) == 1
    [event] = received
    assert event["event_type"] == "login_failure"
    assert event["forwarded_for"] == "PCI_DSS"
    assert "10.2.1.4" in event["controls"]["PCI_DSS"]  # type: ignore[index]
    assert event["user_id"] == "u1"


async def test_failing_siem_never_breaks_logging(audit: AuditLogger) -> None:
    """A collector answering 500 is logged; the event is still committed."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    audit.register_compliance_handler(
        ComplianceStandard.NIST, WebhookHandler("https://siem.example/x", client=client)
    )
    with structlog.testing.capture_logs() as logs:
        seq = await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "no")
        await audit.aclose()
    await client.aclose()
    assert seq == 1
    assert any(e["event"] == HANDLER_FAILED for e in logs)


async def test_syslog_handler_sends_rfc5424(audit: AuditLogger) -> None:
    """The syslog handler sends one RFC 5424 datagram with the event as JSON."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(10)  # a bound on a hang, not a timing assertion
        port = collector.getsockname()[1]
        audit.register_compliance_handler(ComplianceStandard.HIPAA, SyslogHandler(port=port))
        await audit.log_security_event(
            SecurityEventType.BRUTE_FORCE_DETECTED, "5 failures", AuditLevel.CRITICAL
        )
        await audit.aclose()
        datagram = collector.recv(65536).decode()
    header, _, body = datagram.partition(" - ")
    assert header.startswith("<106>1 ")  # facility 13 (log audit) * 8 + severity 2 (critical)
    assert " brute_force_detected" in header
    assert json.loads(body)["message"] == "5 failures"
