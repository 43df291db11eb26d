"""The SQL sink in the request path: hands each request's values to the database
driver hooks and answers a statement they stopped.

For each HTTP request, :class:`SinkGuard` binds a
:class:`~pynomaly_security.sql.guard.RequestSink` (the request's values, and the
body the app reads, bounded, for this request only) and unbinds it when the request
ends. The hooks (``protect_sqlalchemy``, ``ProtectedSQLiteConnection``,
``ProtectedAsyncpgConnection``, ``protect_psycopg``) check every statement
against those values (issue 15).

When a hook raised :class:`~pynomaly_security.sql.errors.SQLInjectionBlocked`
and the app let it through, the request is answered ``403 {"error":
"request_blocked", "request_id"}``. Every finding, blocked or (detect mode)
let through, is written to the request context when it is made, so the audit
layer commits it before the response starts as an ``injection_attempt`` record
carrying the statement's shape with the value redacted; it is reported to the
monitor as an ``INJECTION`` event of the ``sqli`` family when the request ends.
Values are never logged.

The guard is a plain object, like the header policy and the access recorder:
:class:`SQLSinkMiddleware` serves it as a layer of its own, and the stack's fused
outer layer (:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`)
serves it in the coroutine frame it already has: a layer of its own costs every
request about 8,700 instructions under valgrind (``bench/overhead.py
--components --instructions``), most of it the extra coroutine frame every
suspension of the app passes through.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import Token

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._asgi import passes_through
from pynomaly_security.middleware._refusal import error_response
from pynomaly_security.monitor.events import EventKind, request_event
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.guard import (
    RequestSink,
    SinkPolicy,
    bind,
    keeping_body,
    release_sink,
    unbind,
)

__all__ = ["SQLSinkMiddleware", "SinkGuard"]

log = structlog.get_logger(__name__)

EVENT_SQL_BLOCKED = "sql_injection_blocked"
EVENT_SQL_DETECTED = "sql_injection_detected"


class SinkGuard:
    """One app's sink protection: what a layer does for it on each request.

    Args:
        policy: mode (``block``/``detect``), minimum value length, body bound.
        monitor: receives an ``INJECTION`` event per request with findings.

    References:
        Su and Wassermann, POPL 2006; Aikido Zen (SQL injection at the sink).
    """

    def __init__(self, policy: SinkPolicy | None = None, monitor: SecurityMonitor | None = None):
        self.policy = policy or SinkPolicy()
        self.monitor = monitor

    def open(self, scope: Scope) -> Token[Scope | None]:
        """Bind the request (its sink, made when first needed, writes its findings to
        the request context, if any); pair with :meth:`close`."""
        return bind(scope, self.policy)

    def refuse(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The answer to a request whose statement was blocked (the response has
        not started)."""
        return error_response(scope, 403, "request_blocked")(scope, receive, send)

    def close(self, scope: Scope, token: Token[Scope | None]) -> None:
        """Unbind the request; log and report its sink's findings to the monitor."""
        unbind(token)
        sink = release_sink(scope)
        if sink is not None and sink.reports:
            self.report(scope, sink)

    def report(self, scope: Scope, sink: RequestSink) -> None:
        """Log the sink's findings and report them to the monitor."""
        reports = sink.reports
        summary = sink.summary()
        log.warning(
            EVENT_SQL_BLOCKED if summary["blocked"] else EVENT_SQL_DETECTED,
            path=safe_text(scope["path"]),
            method=safe_text(scope["method"]),
            reasons=sorted({r.finding.reason for r in reports}),
            fields=sorted({safe_text(r.field) for r in reports}),
        )
        if self.monitor is not None:
            self.monitor.submit(request_event(EventKind.INJECTION, scope, details=summary))
            if summary["blocked"]:
                self.monitor.count("blocked_requests")


class SQLSinkMiddleware:
    """Check the SQL an app sends against the values of the request it serves.

    Args:
        app: the ASGI app.
        policy: mode (``block``/``detect``), minimum value length, body bound.
        monitor: receives an ``INJECTION`` event per request with findings.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: SinkPolicy | None = None,
        monitor: SecurityMonitor | None = None,
    ) -> None:
        self.app = app
        self.guard = SinkGuard(policy, monitor)

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = self.guard
        token = guard.open(scope)
        started = False

        def send_watched(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            return send(message)

        try:
            await self.app(scope, keeping_body(scope, receive), send_watched)
        except SQLInjectionBlocked:
            if started:
                raise  # a streaming response was under way: nothing else can be sent
            await guard.refuse(scope, receive, send)
        finally:
            guard.close(scope, token)
