"""SQLSinkMiddleware: hands each request's values to the database driver hooks and
answers a statement they stopped.

Innermost layer (just around the app): it binds a
:class:`~pynomaly_security.sql.guard.RequestSink` for the request, keeps the body
the app reads (bounded, for this request only) and unbinds it when the request
ends. The hooks (``protect_sqlalchemy``, ``ProtectedSQLiteConnection``,
``ProtectedAsyncpgConnection``, ``protect_psycopg``) check every statement
against those values (issue 15).

When a hook raised :class:`~pynomaly_security.sql.errors.SQLInjectionBlocked`
and the app let it through, the request is answered ``403 {"error":
"request_blocked", "request_id"}``. Every finding, blocked or (detect mode)
let through, is written to the request context before the response starts, so
the audit layer commits it as an ``injection_attempt`` record carrying the
statement's shape with the value redacted, and is reported to the monitor as
an ``INJECTION`` event of the ``sqli`` family. Values are never logged.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import SQL_SINK, get_request_context
from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._refusal import error_response
from pynomaly_security.monitor.events import EventKind, request_event
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.guard import RequestSink, SinkPolicy, SinkReport, bind, unbind

__all__ = ["SQLSinkMiddleware"]

log = structlog.get_logger(__name__)

EVENT_SQL_BLOCKED = "sql_injection_blocked"
EVENT_SQL_DETECTED = "sql_injection_detected"


class SQLSinkMiddleware:
    """Check the SQL an app sends against the values of the request it serves.

    Args:
        app: the ASGI app.
        policy: mode (``block``/``detect``), minimum value length, body bound.
        monitor: receives an ``INJECTION`` event per request with findings.

    References:
        Su and Wassermann, POPL 2006; Aikido Zen (SQL injection at the sink).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: SinkPolicy | None = None,
        monitor: SecurityMonitor | None = None,
    ) -> None:
        self.app = app
        self.policy = policy or SinkPolicy()
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sink = RequestSink(scope, self.policy)
        started = False
        reported = 0

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sink.add_body(message.get("body", b""))
            return message

        async def send_reports(message: Message) -> None:
            nonlocal started, reported
            if message["type"] == "http.response.start":
                started = True
                # Noted before the outer audit layer sees the response start, so it
                # commits the findings before the client has the answer.
                reported = self._report(scope, sink.reports, reported)
            await send(message)

        token = bind(sink)
        try:
            await self.app(scope, receive_body, send_reports)
        except SQLInjectionBlocked:
            if started:
                raise  # a streaming response was under way: nothing else can be sent
            self._report(scope, sink.reports, reported)
            await error_response(scope, 403, "request_blocked")(scope, receive, send)
        finally:
            unbind(token)

    def _report(self, scope: Scope, reports: list[SinkReport], already: int) -> int:
        """Put the findings not reported yet into the request context (audit) and
        the monitor; returns how many are reported now."""
        if len(reports) <= already:
            return already
        blocked = any(r.blocked for r in reports)
        summary: dict[str, Any] = {
            "blocked": blocked,
            "sink": True,
            "families": ["sqli"],
            "findings": [
                {
                    "field": safe_text(r.field),
                    "reason": r.finding.reason,
                    "dialect": r.dialect,
                    "token_kinds": [str(kind) for kind in r.finding.token_kinds],
                    # The application's statement with the value replaced by [value].
                    "shape": r.finding.shape,
                    "blocked": r.blocked,
                }
                for r in reports
            ],
        }
        ctx = get_request_context(scope)
        if ctx is not None:
            ctx.extra[SQL_SINK] = summary
        log.warning(
            EVENT_SQL_BLOCKED if blocked else EVENT_SQL_DETECTED,
            path=safe_text(scope["path"]),
            method=safe_text(scope["method"]),
            reasons=sorted({r.finding.reason for r in reports}),
            fields=sorted({safe_text(r.field) for r in reports}),
        )
        if self.monitor is not None:
            self.monitor.submit(request_event(EventKind.INJECTION, scope, details=summary))
            if blocked:
                self.monitor.count("blocked_requests")
        return len(reports)
