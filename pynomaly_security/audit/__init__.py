"""Tamper-evident, encrypted audit trail (issue 2 part 3, issue 4).

The public surface: :class:`AuditLogger` (write, query, verify, erase), the
vocabulary enums, what compliance handlers receive (:class:`AuditEvent`, a
:class:`SecurityEvent`: the package's one class of that name, the monitor's, is
re-exported here so the guide's ``isinstance(event, SecurityEvent)`` reads the same
from either namespace), the compliance map and SIEM handlers, and the store Protocol
(stores are built by ``pynomaly_security.storage.StorageRegistry.audit_log``).
"""

from pynomaly_security.audit.actions import AuditContext, audit_action, audit_context
from pynomaly_security.audit.compliance import CONTROLS, controls_for, standards_for
from pynomaly_security.audit.events import AuditEvent, SecurityEvent
from pynomaly_security.audit.logger import AuditLogger
from pynomaly_security.audit.receipt import AuditReceipt
from pynomaly_security.audit.records import (
    AuditEntry,
    AuditLevel,
    ComplianceStandard,
    EntryKind,
    SecurityEventType,
)
from pynomaly_security.audit.siem import SyslogHandler, WebhookHandler
from pynomaly_security.audit.stores import AuditStore
from pynomaly_security.audit.trail import AuditTrail
from pynomaly_security.audit.verify import VerifyResult, verify_store

__all__ = [
    "CONTROLS",
    "AuditContext",
    "AuditEntry",
    "AuditEvent",
    "AuditLevel",
    "AuditLogger",
    "AuditReceipt",
    "AuditStore",
    "AuditTrail",
    "ComplianceStandard",
    "EntryKind",
    "SecurityEvent",
    "SecurityEventType",
    "SyslogHandler",
    "VerifyResult",
    "WebhookHandler",
    "audit_action",
    "audit_context",
    "controls_for",
    "standards_for",
    "verify_store",
]
