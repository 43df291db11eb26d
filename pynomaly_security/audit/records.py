"""Audit vocabulary: event types, levels, compliance standards, and the entry
the logger hands to a store.

An :class:`AuditEntry` is what the application said (plaintext, in memory
only); a store turns it into a sealed row (sequence number, chain hash,
encrypted payload) inside its append transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

__all__ = [
    "AuditEntry",
    "AuditLevel",
    "ComplianceStandard",
    "EntryKind",
    "SecurityEventType",
    "ambient",
    "event_family",
    "request_entry",
]


class SecurityEventType(StrEnum):
    """What happened: the integration guide's taxonomy, one family per prefix.

    Each type maps to the controls it evidences (``compliance.py``). The value is what
    the trail stores (plaintext ``event_type`` column) and what queries filter on, so a
    value never changes once written: the types of the first release keep their values
    (``AUTH_LOGIN_SUCCESS == "login_success"``) and their names stay as aliases
    (``LOGIN_SUCCESS is AUTH_LOGIN_SUCCESS``), so existing trails, queries and code
    read unchanged. Strings outside the enum are accepted as custom types.

    Families: ``AUTH_`` (authentication), ``AUTHZ_`` (authorization), ``DATA_`` (access
    to and movement of data), ``SECURITY_`` (attacks and defences), ``SYSTEM_``
    (configuration, keys, lifecycle), ``ADMIN_`` (administration), ``INCIDENT_``
    (incident response: each incident's timeline), ``COMPLIANCE_``
    (data-subject and retention duties), ``AUDIT_`` (the trail itself).
    """

    # -- authentication (values, not secrets: hence the S105 waivers) --
    AUTH_LOGIN_SUCCESS = "login_success"
    AUTH_LOGIN_FAILURE = "login_failure"
    AUTH_LOGOUT = "logout"
    AUTH_ACCOUNT_LOCKED = "auth_account_locked"
    """The lockout locked an account, an address or the pair (django-axes semantics)."""
    AUTH_ACCOUNT_UNLOCKED = "auth_account_unlocked"
    AUTH_PASSWORD_CHANGED = "auth_password_changed"  # noqa: S105
    AUTH_PASSWORD_RESET = "auth_password_reset"  # noqa: S105
    AUTH_MFA_ENABLED = "auth_mfa_enabled"
    AUTH_MFA_DISABLED = "auth_mfa_disabled"
    AUTH_MFA_FAILURE = "auth_mfa_failure"
    AUTH_TOKEN_ISSUED = "auth_token_issued"  # noqa: S105
    AUTH_TOKEN_REFRESHED = "auth_token_refreshed"  # noqa: S105
    AUTH_TOKEN_REVOKED = "auth_token_revoked"  # noqa: S105
    AUTH_SESSION_EXPIRED = "auth_session_expired"
    # -- authorization --
    AUTHZ_ACCESS_GRANTED = "access_granted"
    AUTHZ_ACCESS_DENIED = "access_denied"
    AUTHZ_PRIVILEGE_ESCALATION = "privilege_escalation"
    AUTHZ_PERMISSION_CHANGED = "authz_permission_changed"
    AUTHZ_ROLE_ASSIGNED = "authz_role_assigned"
    AUTHZ_ROLE_REVOKED = "authz_role_revoked"
    # -- data --
    DATA_ACCESS_READ = "data_access"
    DATA_ACCESS_WRITE = "data_modification"
    DATA_ACCESS_DELETE = "data_deletion"
    DATA_EXPORT = "data_export"
    DATA_IMPORT = "data_import"
    DATA_ENCRYPTED = "data_encrypted"
    DATA_DECRYPTED = "data_decrypted"
    # -- attacks and defences --
    SECURITY_INJECTION_ATTEMPT = "injection_attempt"
    SECURITY_XSS_ATTEMPT = "xss_attempt"
    SECURITY_CSRF_ATTEMPT = "security_csrf_attempt"
    SECURITY_BRUTE_FORCE = "brute_force_detected"
    SECURITY_RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    SECURITY_REQUEST_REFUSED = "request_refused"
    """The stack refused a request at a limit (details: ``reason``, ``status_code``):
    an inspection cap, an unknown ``Host``, a rate limit, a lockout, a busy
    hashing pool (``_context.Refusal``). Not in itself an attack."""
    SECURITY_SUSPICIOUS_ACTIVITY = "suspicious_activity"
    SECURITY_POLICY_VIOLATION = "security_policy_violation"
    SECURITY_ALERT = "security_alert"
    # -- system --
    SYSTEM_CONFIG_CHANGED = "config_change"
    SYSTEM_KEY_ROTATED = "key_rotation"
    SYSTEM_STARTUP = "system_startup"
    SYSTEM_SHUTDOWN = "system_shutdown"
    SYSTEM_ERROR = "system_error"
    # -- administration --
    ADMIN_ACTION = "admin_action"
    ADMIN_USER_CREATED = "admin_user_created"
    ADMIN_USER_MODIFIED = "admin_user_modified"
    ADMIN_USER_DELETED = "admin_user_deleted"
    # -- incident response (issue 16): an incident's timeline is these records --
    INCIDENT_CREATED = "incident_created"
    INCIDENT_UPDATED = "incident_updated"
    """A change of an incident (``details.action``: status, note, assign, alert_linked,
    recurred, ...); ``details.incident_id`` names it."""
    # -- compliance duties --
    COMPLIANCE_SUBJECT_ERASED = "subject_erased"
    COMPLIANCE_DATA_RETENTION = "compliance_data_retention"
    COMPLIANCE_EXPORT_REQUEST = "compliance_export_request"
    # -- the trail itself --
    AUDIT_ACTION = "audit_action"
    """An application action recorded by ``log_audit_event`` / ``@audit_action``."""
    AUDIT_TAMPER_DETECTED = "audit_tamper_detected"
    """A writer found records it did not sign that do not authenticate (``chain.py``)."""
    AUDIT_HTTP_REQUEST = "http_request"

    # -- the first release's names: aliases of the canonical members above --
    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    LOGOUT = "logout"
    ACCESS_GRANTED = "access_granted"
    ACCESS_DENIED = "access_denied"
    PRIVILEGE_ESCALATION = "privilege_escalation"
    INJECTION_ATTEMPT = "injection_attempt"
    XSS_ATTEMPT = "xss_attempt"
    BRUTE_FORCE_DETECTED = "brute_force_detected"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    REQUEST_REFUSED = "request_refused"
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    DATA_ACCESS = "data_access"
    DATA_MODIFICATION = "data_modification"
    DATA_DELETION = "data_deletion"
    CONFIG_CHANGE = "config_change"
    KEY_ROTATION = "key_rotation"
    SUBJECT_ERASED = "subject_erased"
    HTTP_REQUEST = "http_request"


_FAMILIES = {t.value: t.name.split("_", 1)[0].lower() for t in SecurityEventType}
"""Each canonical type's family (its name's prefix: ``auth``, ``security``, ...)."""


def event_family(event_type: str) -> str:
    """The family of an event type (``"auth"`` for ``login_failure``), ``"custom"`` for
    a string outside :class:`SecurityEventType`: a small fixed set, fit for a label."""
    return _FAMILIES.get(event_type, "custom")


class AuditLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class ComplianceStandard(StrEnum):
    SOX = "SOX"
    GDPR = "GDPR"
    HIPAA = "HIPAA"
    PCI_DSS = "PCI_DSS"
    ISO27001 = "ISO27001"
    NIST = "NIST"

    @classmethod
    def _missing_(cls, value: object) -> ComplianceStandard | None:
        # The guide writes "PCI DSS"; users write "sox": one standard, however spelled.
        if isinstance(value, str):
            key = value.strip().upper().replace(" ", "_").replace("-", "_")
            key = "ISO27001" if key in ("ISO_27001", "ISO/IEC_27001") else key
            return cls.__members__.get(key)
        return None


class EntryKind(StrEnum):
    """Durability class: ``security`` and ``audit`` entries are committed before
    the call returns, one chain record each. Access records are batched: since
    format 1 of ``batch.py`` many of them form one ``access_batch`` record
    (queries expand it into entries of kind ``request``); ``request`` records
    of one access each are what older versions wrote, still read."""

    SECURITY = "security"
    AUDIT = "audit"
    REQUEST = "request"
    ACCESS_BATCH = "access_batch"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing to record, before sealing.

    ``payload`` holds the non-personal body (message, details, method, path, ...)
    and is encrypted under the store key; ``user_id`` and ``source_ip`` are
    personal and, when a user is known, encrypted under that subject's key so
    :meth:`AuditLogger.erase_subject` can shred them.
    """

    kind: EntryKind
    event_type: str
    level: AuditLevel
    standards: tuple[ComplianceStandard, ...] = ()
    request_id: str | None = None
    user_id: str | None = None
    source_ip: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    erased_ref: str | None = None
    """On a ``subject_erased`` entry: the blind-index ref whose key is destroyed,
    stored in the plaintext ``subject_ref`` column (no personal part), so a
    verifier without the master key can tell an erasure from a deleted key."""
    tenant: str | None = None
    """The tenant it was recorded for (``audit/tenants.py``); None: the platform."""


def ambient(name: str, given: str | None) -> str | None:
    """An explicit value wins; else what the tracking middleware bound in structlog."""
    if given is not None:
        return given
    value = structlog.contextvars.get_contextvars().get(name)
    return None if value is None else str(value)


def request_entry(
    *,
    method: str,
    path: str,
    status_code: int,
    duration_ms: float,
    request_id: str | None,
    client_ip: str | None,
    user_id: str | None,
    timestamp: float,
) -> AuditEntry:
    """The access record of one HTTP request."""
    return AuditEntry(
        kind=EntryKind.REQUEST,
        event_type="http_request",
        level=AuditLevel.ERROR if status_code >= 500 else AuditLevel.INFO,
        request_id=request_id,
        user_id=user_id,
        source_ip=client_ip,
        payload={
            "method": method,
            "path": path,
            "status_code": status_code,
            "duration_ms": round(duration_ms, 3),
        },
        timestamp=timestamp,
    )
