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

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._bounded import BoundedDict
from pynomaly_security._context import (
    RATE_LIMITED,
    REFUSED,
    SQL_SINK,
    AccessRow,
    Refusal,
    access_row,
    get_request_context,
)
from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.logsafe import safe_text

__all__ = ["REQUEST_EVENT", "AccessRecorder", "AuditMiddleware"]

log = get_logger(__name__)

REQUEST_EVENT = "http_request"
REPEAT_WINDOW = 60.0
"""Seconds during which a repeating refusal (``Refusal.repeating``) of one client
and reason is recorded once; the next record counts the ones in between."""
_MAX_REPEAT_KEYS = 10_000


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


class AccessRecorder:
    """What the access audit does for each request: commit the request's security
    events before its response starts, queue its access row and emit its log line.
    Used by :class:`AuditMiddleware` and by the stack's fused layer
    (:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`).

    Args:
        audit_logger: a started :class:`~pynomaly_security.audit.AuditLogger`
            (anything with its ``log_request``).
        log_line: also emit the canonical structlog line (event ``http_request``).
        clock: monotonic seconds, for the window of repeating refusals (tests inject it).
    """

    def __init__(
        self,
        audit_logger: _AccessLog,
        *,
        log_line: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audit_logger = audit_logger
        self.log_line = log_line
        queue = getattr(audit_logger, "queue_access", None)
        self.queue: Callable[[AccessRow], None] = (
            queue if queue is not None else _LogRequestAdapter(audit_logger)
        )
        """Queues an :data:`~pynomaly_security._context.AccessRow` (no I/O)."""
        log_security_event = getattr(audit_logger, "log_security_event", None)
        self.commit: Callable[[Scope, int], Awaitable[None]] | None = (
            _SecurityEventCommitter(log_security_event, clock)
            if log_security_event is not None
            else None
        )
        """Commits the request's security events (login outcome, injection
        verdict, refusal) before the response starts: call it on a login route or
        when ``ctx.extra`` holds anything; ``None`` for a plain access log."""

    def finish(
        self,
        row: AccessRow,
        extra: dict[str, Any],
        error: str | None,
        client_request_id: str | None,
    ) -> None:
        """Queue a finished request's row and its log line; ``extra`` is its
        ``RequestContext.extra``: a request the rate limiter refused is not written
        (a flood is not recorded one request at a time)."""
        if RATE_LIMITED in extra:
            return
        self.queue(row)
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


class AuditMiddleware:
    """Record every HTTP request in the audit trail.

    Args:
        app: the ASGI app to wrap.
        recorder: what is recorded and where (:class:`AccessRecorder`); or its
            ``audit_logger`` (with ``log_line`` and ``clock``) given here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: AccessRecorder | None = None,
        audit_logger: _AccessLog | None = None,
        log_line: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if recorder is None:
            if audit_logger is None:
                raise ConfigurationError("AuditMiddleware needs a recorder or an audit_logger")
            recorder = AccessRecorder(audit_logger, log_line=log_line, clock=clock)
        elif audit_logger is not None:
            raise ConfigurationError(
                "AuditMiddleware takes a recorder or an audit_logger, not both"
            )
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        t0 = time.perf_counter()
        status = 500
        recorder = self.recorder
        commit = recorder.commit

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
            # The context is read after the app ran: authentication may have set user_id.
            ctx = get_request_context(scope)
            request_id: str | None
            user_id: str | None
            if ctx is not None:
                request_id, client_ip, user_id = ctx.request_id, ctx.client_ip, ctx.user_id
            else:
                client = scope.get("client")
                request_id, client_ip, user_id = None, client[0] if client else None, None
            row = access_row(
                started,
                scope["method"],
                scope["path"],
                status,
                time.perf_counter() - t0,
                request_id,
                user_id,
                client_ip,
            )
            if ctx is not None:
                recorder.finish(row, ctx.extra, error, ctx.client_request_id)
            else:
                recorder.finish(row, {}, error, None)


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
    status), injection verdicts (``ctx.extra["inspection"]``) and refusals
    (``ctx.extra[REFUSED]``, one ``request_refused`` record each).

    A repeating refusal (a rate limit, a lockout, a busy service: what a flood
    gets) is recorded once per client address and reason per
    :data:`REPEAT_WINDOW`, the next record carrying ``repeats``, the count of
    those refused in between: the refusal stays cheap, and the trail shows it."""

    def __init__(
        self, log_security_event: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        from pynomaly_security.audit.records import AuditLevel, SecurityEventType

        self._log = log_security_event
        self._level = AuditLevel
        self._types = SecurityEventType
        self._clock = clock
        # (reason, client IP) -> [when last recorded, refusals not recorded since].
        self._repeats: BoundedDict[tuple[str, str | None], list[float]] = BoundedDict(
            _MAX_REPEAT_KEYS
        )

    async def __call__(self, scope: Scope, status: int) -> None:
        ctx = get_request_context(scope)
        if ctx is None:
            return
        common: dict[str, Any] = {
            # Attacker text: escaped here, cut by the logger's bounds (audit/bounds.py).
            "path": safe_text(scope["path"]),
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
        for key in ("inspection", SQL_SINK):
            # The edge's verdict and the SQL sink's findings: one record each.
            inspection = ctx.extra.get(key)
            if inspection is None:
                continue
            blocked = bool(inspection.get("blocked"))
            await self._log(
                self._types.INJECTION_ATTEMPT,
                "injection attempt blocked" if blocked else "injection attempt",
                self._level.WARNING if blocked else self._level.CRITICAL,
                details={**common, **inspection},
                user_id=ctx.user_id,
                source_ip=ctx.client_ip,
                request_id=ctx.request_id,
            )
        refusal: Refusal | None = ctx.extra.get(REFUSED)
        if refusal is not None:
            details = {**common, "reason": refusal.reason}
            if refusal.repeating:
                repeats = self._repeated(refusal.reason, ctx.client_ip)
                if repeats is None:
                    return
                details["repeats"] = repeats
            await self._log(
                self._types.REQUEST_REFUSED,
                "request refused",
                self._level.WARNING,
                details=details,
                user_id=ctx.user_id,
                source_ip=ctx.client_ip,
                request_id=ctx.request_id,
            )

    def _repeated(self, reason: str, client_ip: str | None) -> int | None:
        """``None`` when this refusal is one of a repeat already recorded within the
        window (counted), else how many were refused unrecorded since the last record."""
        now = self._clock()
        key = (reason, client_ip)
        seen = self._repeats.get(key)
        if seen is not None and now - seen[0] < REPEAT_WINDOW:
            seen[1] += 1
            return None
        self._repeats[key] = [now, 0]
        return 0 if seen is None else int(seen[1])
