"""Which compliance controls each event type evidences, and forwarding of
matching events to a SIEM.

Control identifiers: PCI DSS v4.0 requirement 10.2 (audit logs), HIPAA
45 CFR 164.312(b) (audit controls) and 164.308(a)(5)(ii)(C) (log-in
monitoring), ISO/IEC 27001:2022 Annex A (A.8.15 logging, A.8.16 monitoring),
NIST SP 800-53 rev. 5 (AU-2 event logging, AU-9 protection of audit
information, AC-7 unsuccessful logon attempts), SOX section 404 IT general
controls, GDPR articles 30/32/17.
"""

from __future__ import annotations

from collections.abc import Mapping

from pynomaly_security.audit.records import ComplianceStandard, SecurityEventType

__all__ = ["CONTROLS", "controls_for", "standards_for"]

S = ComplianceStandard
E = SecurityEventType

# Every record is protected by the chain and checkpoints (NIST AU-9, ISO A.8.15);
# these are the controls common to all audit events.
_BASE: dict[ComplianceStandard, tuple[str, ...]] = {
    S.PCI_DSS: ("10.2.1", "10.2.2"),
    S.HIPAA: ("164.312(b)",),
    S.ISO27001: ("A.8.15",),
    S.NIST: ("AU-2", "AU-3", "AU-9"),
}

_AUTH = {
    S.PCI_DSS: ("10.2.1.4",),
    S.HIPAA: ("164.308(a)(5)(ii)(C)", "164.312(d)"),
    S.ISO27001: ("A.8.5",),
    S.NIST: ("AC-7", "IA-2"),
    S.SOX: ("ITGC access to programs and data",),
}
_ATTACK = {
    S.PCI_DSS: ("10.2.1.4", "11.5"),
    S.ISO27001: ("A.8.16",),
    S.NIST: ("SI-4", "IR-5"),
    S.GDPR: ("Art. 32", "Art. 33"),
}
# A check that hit a limit and refused (monitoring; denial-of-service protection).
_REFUSAL = {
    S.PCI_DSS: ("10.2.1.4",),
    S.ISO27001: ("A.8.16",),
    S.NIST: ("SI-4", "SC-5"),
}
_DATA = {
    S.PCI_DSS: ("10.2.1.1",),
    S.HIPAA: ("164.312(c)(1)",),
    S.ISO27001: ("A.5.34",),
    S.NIST: ("AU-12",),
    S.SOX: ("ITGC access to programs and data",),
    S.GDPR: ("Art. 30", "Art. 32"),
}
_ADMIN = {
    S.PCI_DSS: ("10.2.1.2", "10.2.1.5"),
    S.ISO27001: ("A.8.32",),
    S.NIST: ("CM-3", "AU-12"),
    S.SOX: ("ITGC change management",),
}
_KEYS = {
    S.PCI_DSS: ("3.7",),
    S.ISO27001: ("A.8.24",),
    S.NIST: ("SC-12",),
}

# Incident handling: ISO/IEC 27001:2022 A.5.24-A.5.28 (planning, assessment, response,
# learning, evidence), NIST SP 800-53 IR-4/IR-5/IR-6, PCI DSS v4.0 12.10, GDPR Art. 33.
_INCIDENT = {
    S.PCI_DSS: ("12.10.1",),
    S.ISO27001: ("A.5.24", "A.5.25", "A.5.26", "A.5.28"),
    S.NIST: ("IR-4", "IR-5", "IR-6"),
    S.GDPR: ("Art. 33",),
}

_SYSTEM = {
    S.PCI_DSS: ("10.2.1.6",),
    S.ISO27001: ("A.8.15",),
    S.NIST: ("AU-12", "SI-11"),
}

_BY_EVENT: dict[SecurityEventType, tuple[Mapping[ComplianceStandard, tuple[str, ...]], ...]] = {
    E.AUTH_LOGIN_SUCCESS: (_AUTH,),
    E.AUTH_LOGIN_FAILURE: (_AUTH,),
    E.AUTH_LOGOUT: (_AUTH,),
    E.AUTH_ACCOUNT_LOCKED: (_AUTH, _ATTACK),
    E.AUTH_ACCOUNT_UNLOCKED: (_AUTH, _ADMIN),
    E.AUTH_PASSWORD_CHANGED: (_AUTH,),
    E.AUTH_PASSWORD_RESET: (_AUTH,),
    E.AUTH_MFA_ENABLED: (_AUTH,),
    E.AUTH_MFA_DISABLED: (_AUTH,),
    E.AUTH_MFA_FAILURE: (_AUTH,),
    E.AUTH_TOKEN_ISSUED: (_AUTH,),
    E.AUTH_TOKEN_REFRESHED: (_AUTH,),
    E.AUTH_TOKEN_REVOKED: (_AUTH,),
    E.AUTH_SESSION_EXPIRED: (_AUTH,),
    E.AUTHZ_ACCESS_GRANTED: (_DATA,),
    E.AUTHZ_ACCESS_DENIED: (_AUTH, {S.PCI_DSS: ("10.2.1.4",)}),
    E.AUTHZ_PRIVILEGE_ESCALATION: (_ADMIN, _ATTACK),
    E.AUTHZ_PERMISSION_CHANGED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.AUTHZ_ROLE_ASSIGNED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.AUTHZ_ROLE_REVOKED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.DATA_ACCESS_READ: (_DATA,),
    E.DATA_ACCESS_WRITE: (_DATA,),
    E.DATA_ACCESS_DELETE: (_DATA,),
    E.DATA_EXPORT: (_DATA,),
    E.DATA_IMPORT: (_DATA,),
    E.DATA_ENCRYPTED: (_KEYS, _DATA),
    E.DATA_DECRYPTED: (_KEYS, _DATA),
    E.SECURITY_INJECTION_ATTEMPT: (_ATTACK,),
    E.SECURITY_XSS_ATTEMPT: (_ATTACK,),
    E.SECURITY_CSRF_ATTEMPT: (_ATTACK,),
    E.SECURITY_BRUTE_FORCE: (_ATTACK, _AUTH),
    E.SECURITY_RATE_LIMIT_EXCEEDED: (_ATTACK,),
    E.SECURITY_REQUEST_REFUSED: (_REFUSAL,),
    E.SECURITY_SUSPICIOUS_ACTIVITY: (_ATTACK,),
    E.SECURITY_POLICY_VIOLATION: (_ATTACK,),
    E.SECURITY_ALERT: (_ATTACK,),
    E.SYSTEM_CONFIG_CHANGED: (_ADMIN,),
    E.SYSTEM_KEY_ROTATED: (_KEYS, _ADMIN),
    E.SYSTEM_STARTUP: (_SYSTEM,),
    E.SYSTEM_SHUTDOWN: (_SYSTEM,),
    E.SYSTEM_ERROR: (_SYSTEM,),
    E.ADMIN_ACTION: (_ADMIN,),
    E.ADMIN_USER_CREATED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.ADMIN_USER_MODIFIED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.ADMIN_USER_DELETED: (_ADMIN, {S.PCI_DSS: ("10.2.1.5",)}),
    E.INCIDENT_CREATED: (_INCIDENT,),
    E.INCIDENT_UPDATED: (_INCIDENT,),
    E.COMPLIANCE_SUBJECT_ERASED: ({S.GDPR: ("Art. 17",)},),
    E.COMPLIANCE_DATA_RETENTION: ({S.GDPR: ("Art. 5(1)(e)",)}, {S.NIST: ("AU-11",)}),
    E.COMPLIANCE_EXPORT_REQUEST: ({S.GDPR: ("Art. 15", "Art. 20")}, _DATA),
    E.AUDIT_ACTION: (_DATA,),
    E.AUDIT_TAMPER_DETECTED: (_ATTACK, {S.NIST: ("AU-9",)}),
    E.AUDIT_HTTP_REQUEST: ({S.PCI_DSS: ("10.2.1.1",), S.NIST: ("AU-12",)},),
}
"""Every canonical type (a test checks none is missing)."""


def _build() -> dict[str, dict[str, tuple[str, ...]]]:
    table: dict[str, dict[str, tuple[str, ...]]] = {}
    for event, groups in _BY_EVENT.items():
        merged: dict[str, list[str]] = {s.value: list(c) for s, c in _BASE.items()}
        for group in groups:
            for standard, controls in group.items():
                bucket = merged.setdefault(standard.value, [])
                bucket.extend(c for c in controls if c not in bucket)
        table[event.value] = {k: tuple(v) for k, v in sorted(merged.items())}
    return table


CONTROLS: Mapping[str, Mapping[str, tuple[str, ...]]] = _build()
"""event type value -> standard value -> control identifiers."""


def controls_for(event_type: str, standards: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Controls an event evidences, restricted to ``standards`` when given.

    Custom event types (not in :class:`SecurityEventType`) get the base controls.
    """
    table = CONTROLS.get(event_type) or {s.value: c for s, c in _BASE.items()}
    return {s: list(c) for s, c in table.items() if standards is None or s in standards}


def standards_for(event_type: str) -> tuple[ComplianceStandard, ...]:
    """The standards an event type is tagged with by default."""
    table = CONTROLS.get(event_type) or {s.value: () for s in _BASE}
    return tuple(s for s in ComplianceStandard if s.value in table)
