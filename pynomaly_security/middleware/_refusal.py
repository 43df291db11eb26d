"""One answer for a request a layer will not pass, built in one place.

Every layer that refuses a request it could not examine (a body over its limit,
or one that does not arrive within ``body_read_timeout``; framing the inspector
cannot read) answers it the same way:

* ``{"error": "<reason>", "request_id": "..."}`` with the status (the reason is
  one of the README's fixed strings, never request content);
* a ``request_refused`` warning line (path and method escaped: they are
  attacker text, :func:`~pynomaly_security.logsafe.safe_text`);
* :func:`~pynomaly_security._context.note_refusal`, which the audit layer
  commits as a ``request_refused`` record before the answer is sent;
* a ``BLOCKED`` event to the monitor, when the layer has one.

A slow client is the usual case: the login guard and the tracking layer read a
login body to find the user name, the inspection layer reads bodies to inspect
them, and each read is bounded in size and in time (issue 12, item 12: a body
trickled byte by byte held its request, and a login slot, forever).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.monitor.events import EventKind, request_event

if TYPE_CHECKING:  # the monitor imports the settings, which import the auth package
    from pynomaly_security.monitor.monitor import SecurityMonitor

__all__ = [
    "BODY_READ_TIMEOUT",
    "EVENT_REFUSED",
    "REQUEST_TOO_LARGE",
    "check_body_read_timeout",
    "error_response",
    "refuse",
]

log = get_logger(__name__)

EVENT_REFUSED = "request_refused"
BODY_READ_TIMEOUT = "body_read_timeout"
REQUEST_TOO_LARGE = "request_too_large"


def check_body_read_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable body read timeout; else :class:`ConfigurationError`."""
    if not seconds > 0:
        raise ConfigurationError(f"body_read_timeout must be > 0 seconds, got {seconds!r}")
    return seconds


def error_response(scope: Scope, status: int, error: str) -> JSONResponse:
    """``{"error": error, "request_id": ...}`` with ``status``: the request's id when
    the tracking layer gave it one, else a fresh one."""
    ctx = get_request_context(scope)
    return JSONResponse(
        {"error": error, "request_id": ctx.request_id if ctx is not None else uuid.uuid4().hex},
        status_code=status,
    )


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    reason: str,
    *,
    monitor: SecurityMonitor | None = None,
) -> None:
    """Answer ``status`` with ``reason``, and record it: the audit record (through the
    request context), a warning line and, with ``monitor``, a ``BLOCKED`` event."""
    note_refusal(scope, reason, status)
    path, method = safe_text(scope["path"]), safe_text(scope["method"])
    log.warning(EVENT_REFUSED, path=path, method=method, status=status, reason=reason)
    if monitor is not None:
        monitor.submit(
            request_event(
                EventKind.BLOCKED,
                scope,
                status_code=status,
                details={"refused": reason, "status": status},
            )
        )
    await error_response(scope, status, reason)(scope, receive, send)
