"""AuditMiddleware: one access record and one canonical log line per HTTP request.

Pure ASGI. The status is captured from ``http.response.start`` in a ``send``
wrapper; bodies are never buffered or read; the path is logged but never the
query string (values there may carry tokens or personal data). The request
path does no I/O: the record is appended to the audit logger's queue and a
background task commits it within ``audit_flush_interval_ms``.

References:
    Starlette docs, "Pure ASGI middleware: cleanup and error handling";
    structlog, "Logging best practices: canonical log lines";
    OWASP Logging Cheat Sheet (what not to log).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import REFUSED, AccessRow, access_row, get_request_context
from pynomaly_security.logsafe import safe_text

__all__ = ["REQUEST_EVENT", "AuditMiddleware"]

log = structlog.get_logger(__name__)

REQUEST_EVENT = "http_request"


class _AccessLog(Protocol):
    def log_request(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        duration_ms: float,
        request_id: str | None = None,
        client_ip: str | None = None,
        user_id: str | None = None,
        timestamp: float | None = None,
    ) -> None: ...


class AuditMiddleware:
    """Record every HTTP request in the audit trail.

    Args:
        app: the ASGI app to wrap.
        audit_logger: a started :class:`~pynomaly_security.audit.AuditLogger`
            (anything with its ``log_request``).
        log_line: also emit the canonical structlog line (event ``http_request``).
    """

    def __init__(self, app: ASGIApp, *, audit_logger: _AccessLog, log_line: bool = True) -> None:
        self.app = app
        self.audit_logger = audit_logger
        self.log_line = log_line
        queue = getattr(audit_logger, "queue_access", None)
        self.queue_access: Callable[[AccessRow], None] = (
            queue if queue is not None else _LogRequestAdapter(audit_logger)
        )
        log_security_event = getattr(audit_logger, "log_security_event", None)
        self.commit_events: Callable[[Scope, int], Awaitable[None]] | None = (
            _SecurityEventCommitter(log_security_event) if log_security_event is not None else None
        )
        """Commits the request's security events (login outcome, injection
        verdict) before the response starts; ``None`` for a plain access log."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        t0 = time.perf_counter()
        status = 500
        commit = self.commit_events

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if commit is not None:
                    ctx = get_request_context(scope)
                    # Security events (a login outcome, an injection verdict) are
                    # committed before the client can see the answer: a crash after
                    # the response completed cannot lose them. Other requests skip
                    # the call altogether.
                    if ctx is not None and (ctx.is_login_route or ctx.extra):
                        await commit(scope, status)
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            self._record(scope, status, started, time.perf_counter() - t0, error)

    def _record(
        self, scope: Scope, status: int, started: float, elapsed: float, error: str | None
    ) -> None:
        # The context is read after the app ran: authentication may have set user_id.
        ctx = get_request_context(scope)
        if ctx is not None:
            request_id, client_ip, user_id = ctx.request_id, ctx.client_ip, ctx.user_id
        else:
            client = scope.get("client")
            request_id, client_ip, user_id = None, client[0] if client else None, None
        self.record_row(
            access_row(
                started,
                scope["method"],
                scope["path"],
                status,
                elapsed,
                request_id,
                user_id,
                client_ip,
            ),
            error,
            ctx.client_request_id if ctx is not None else None,
        )

    def record_row(
        self, row: AccessRow, error: str | None, client_request_id: str | None = None
    ) -> None:
        """Queue a request's :data:`~pynomaly_security._context.AccessRow` (and the log
        line). The stack's tracking layer calls :attr:`queue_access` and
        :meth:`log_access` itself."""
        self.queue_access(row)
        if self.log_line:
            self.log_access(row, error, client_request_id)

    def log_access(
        self, row: AccessRow, error: str | None, client_request_id: str | None = None
    ) -> None:
        """Emit the canonical log line of a request (callers check :attr:`log_line`).
        The path is attacker text: its control characters are escaped
        (:func:`~pynomaly_security.logsafe.safe_text`); the client's own request id,
        when it sent one, is its own field (``client_request_id``)."""
        fields = _row_fields(row)
        fields["path"] = safe_text(fields["path"])
        if client_request_id is not None:
            fields["client_request_id"] = client_request_id
        log.info(REQUEST_EVENT, **fields, error=error)


def _row_fields(row: AccessRow) -> dict[str, Any]:
    """An access row as ``log_request``'s keyword arguments (``timestamp`` aside)."""
    _, method, path, status, duration_us, request_id, user_id, client_ip = row
    return {
        "method": method,
        "path": path,
        "status_code": status,
        "duration_ms": duration_us / 1000,
        "request_id": request_id,
        "client_ip": client_ip,
        "user_id": user_id,
    }


class _LogRequestAdapter:
    """Feeds rows to an access log that only has ``log_request``."""

    def __init__(self, target: _AccessLog) -> None:
        self._log_request = target.log_request

    def __call__(self, row: AccessRow) -> None:
        self._log_request(**_row_fields(row), timestamp=row[0] / 1_000_000)


class _SecurityEventCommitter:
    """Turns what the other middlewares put in the request context into
    committed security events: login outcomes on login routes (from the
    status), injection verdicts (``ctx.extra["inspection"]``) and other refusals
    (``ctx.extra["refused"]``)."""

    def __init__(self, log_security_event: Any) -> None:
        from pynomaly_security.audit.records import AuditLevel, SecurityEventType

        self._log = log_security_event
        self._level = AuditLevel
        self._types = SecurityEventType

    async def __call__(self, scope: Scope, status: int) -> None:
        ctx = get_request_context(scope)
        if ctx is None:
            return
        common: dict[str, Any] = {
            "path": scope["path"],
            "method": scope["method"],
            "status_code": status,
        }
        if ctx.client_request_id is not None:
            # Labelled as the client's: the record's request_id is the server's own.
            common["client_request_id"] = ctx.client_request_id
        if ctx.is_login_route and (status in (401, 403) or 200 <= status < 300):
            ok = status < 300
            await self._log(
                self._types.LOGIN_SUCCESS if ok else self._types.LOGIN_FAILURE,
                "login succeeded" if ok else "login failed",
                self._level.INFO if ok else self._level.WARNING,
                # With the authenticator's router, why the sign-in scored what it did
                # (risk level and reasons, issue 5) is part of the evidence.
                details={
                    **common,
                    "username": ctx.login_username,
                    **({"risk": ctx.extra["sign_in_risk"]} if "sign_in_risk" in ctx.extra else {}),
                },
                user_id=ctx.login_username,
                source_ip=ctx.client_ip,
                request_id=ctx.request_id,
            )
        inspection = ctx.extra.get("inspection")
        if inspection is not None:
            await self._log(
                self._types.INJECTION_ATTEMPT,
                "injection attempt blocked" if inspection.get("blocked") else "injection attempt",
                self._level.WARNING if inspection.get("blocked") else self._level.CRITICAL,
                details={**common, **inspection},
                user_id=ctx.user_id,
                source_ip=ctx.client_ip,
                request_id=ctx.request_id,
            )
        elif (refused := ctx.extra.get(REFUSED)) is not None:
            # Refused unread by another layer (a login body too slow or too large):
            # not an injection verdict, but a request the stack would not pass.
            await self._log(
                self._types.SUSPICIOUS_ACTIVITY,
                "request refused",
                self._level.WARNING,
                details={**common, "blocked": True, "refused": refused["reason"]},
                user_id=ctx.user_id,
                source_ip=ctx.client_ip,
                request_id=ctx.request_id,
            )
