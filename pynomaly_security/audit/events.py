"""AuditEvent: a security or audit event as committed to the trail, what compliance
handlers receive (issue 14).

There is one ``SecurityEvent`` class in the package, the monitor's (something the
middlewares or the app observed); ``pynomaly_security.SecurityEvent`` and
``pynomaly_security.audit.SecurityEvent`` both name it. A committed audit event *is*
such an event, with what the trail added (sequence number, type, level, message,
standards and controls), so :class:`AuditEvent` subclasses it: the guide's
``isinstance(event, SecurityEvent)`` holds for what a handler receives, and
``event.dict()`` / ``event.model_dump()`` give the export document (the shape
``audit export`` writes and the SIEM handlers send). It is a frozen dataclass, not a
pydantic model: pydantic's ``.dict()`` is deprecated and warns, ours does not.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pynomaly_security.monitor.events import EventKind, SecurityEvent

__all__ = ["AuditEvent", "SecurityEvent"]

# The monitor's kind of an event type, where the monitor has one.
_KINDS = {
    "login_success": EventKind.LOGIN_SUCCESS,
    "login_failure": EventKind.LOGIN_FAILURE,
    "injection_attempt": EventKind.INJECTION,
    "xss_attempt": EventKind.INJECTION,
    "request_refused": EventKind.BLOCKED,
    "auth_account_locked": EventKind.LOCKOUT,
    "http_request": EventKind.REQUEST,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent(SecurityEvent):
    """A committed security or audit event (see the module).

    Besides :class:`SecurityEvent`'s fields: ``seq`` (its place in the chain),
    ``event_type``, ``level``, ``message`` (security events), ``standards`` and
    ``controls`` (what it evidences), ``forwarded_for`` (the standard it was sent for).
    """

    seq: int
    event_type: str
    level: str
    message: str | None = None
    standards: tuple[str, ...] = ()
    controls: Mapping[str, list[str]] = field(default_factory=dict)
    forwarded_for: str | None = None
    document: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AuditEvent:
        """The event of an export document (``AuditReader.export_dict``)."""
        details = doc.get("details")
        return cls(
            kind=_KINDS.get(str(doc.get("event_type")), EventKind.CUSTOM),
            source_ip=doc.get("source_ip"),
            user_id=doc.get("user_id"),
            path=doc.get("path"),
            method=doc.get("method"),
            status_code=doc.get("status_code"),
            request_id=doc.get("request_id"),
            timestamp=float(doc.get("ts") or 0.0),
            details=dict(details) if isinstance(details, Mapping) else {},
            seq=int(doc.get("seq") or 0),
            event_type=str(doc.get("event_type")),
            level=str(doc.get("level")),
            message=doc.get("message"),
            standards=tuple(doc.get("standards") or ()),
            controls=dict(doc.get("controls") or {}),
            forwarded_for=doc.get("forwarded_for"),
            document=dict(doc),
        )

    # ``builtins.dict``: in the class body ``dict`` is the method below.
    def model_dump(self) -> builtins.dict[str, Any]:
        """The export document: a copy, so a handler may change it freely."""
        return copy.deepcopy(dict(self.document))

    def dict(self) -> builtins.dict[str, Any]:
        """The guide's name for :meth:`model_dump`."""
        return self.model_dump()
