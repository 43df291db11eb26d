"""Input inspection: detect injection in every user-controlled value.

The path, query string, headers, cookies and the body, whatever its type, are
handed to the pure :class:`~pynomaly_security.detection.Inspector`. In block
mode a blocked request is answered ``403`` with ``{"error": "request_blocked",
"request_id"}`` and never reaches the app; in detect-only mode it passes and is
reported. The body is buffered up to ``max_body_size`` bytes (over it: ``413``)
within ``body_read_timeout`` seconds (slower: ``408``) and replayed to the app
byte for byte. A body of a type no parser reads (``application/octet-stream``,
images, unknown types) is read too: FastAPI hands its text to a ``str`` body
parameter. Only on a route exempt from body inspection (``@inspection_exempt()``,
``fields=["body"]``, or the same in ``detection_exclusions``) does such a body
stream through unread, so uploads there are not bounded by ``max_body_size``.
Websockets and lifespan pass through untouched.

A request inspection will not pass (over a limit, ambiguous framing, JSON the
app cannot use) is refused with the status and reason of the README's caps
table, ``{"error": "<reason>", "request_id"}``, in every mode: refusing is not
a detection that detect-only mode may waive, since the request was not
inspected. Each refusal is a ``BLOCKED`` monitor event (not an injection verdict) and a
``request_refused`` record in the audit trail (its ``reason`` and ``status_code``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security._context import get_request_context
from pynomaly_security._log import get_logger
from pynomaly_security.detection import Inspector, RequestParts, Verdict
from pynomaly_security.detection.exemptions import match_route_policy
from pynomaly_security.detection.extract import Framing, read_framing
from pynomaly_security.detection.types import InspectionRefused
from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._asgi import Layer, passes_through
from pynomaly_security.middleware._body import (
    BodyOutcome,
    content_length,
    read_body,
    replay_receive,
)
from pynomaly_security.middleware._clean import CleanRequests
from pynomaly_security.middleware._refusal import (
    BODY_READ_TIMEOUT,
    REQUEST_TOO_LARGE,
    check_body_read_timeout,
    error_response,
    refuse,
)
from pynomaly_security.monitor.events import EventKind, request_event
from pynomaly_security.monitor.monitor import SecurityMonitor

__all__ = ["PARSED_CONTENT_TYPES", "RAISED_DETECTION", "InputInspectionMiddleware"]

log = get_logger(__name__)

EVENT_INJECTION = "injection_detected"
RAISED_DETECTION = "pynomaly_security.raised_detection"
"""Scope key for a request inspected above the configured level, never passed from the
memory of clean requests (its verdicts are the configured level's). ``True``: a
``raise_detection_level`` decision (``decisions/middleware.py``), the paranoid level
(4) in block mode. An ``int``: a tenant's ``detection_level`` override (issue 21, set by
the tenancy layer), that level in the configured mode."""
EVENT_BLOCKED = "request_blocked"

PARSED_CONTENT_TYPES = (
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data",
    b"application/xml",
    b"text/",
)
"""Bodies of these types (and ``*+json``, ``*+xml``, none) are always read; others
may stream through on a route exempt from body inspection."""


def _raw_path(scope: Scope) -> str:
    """The path as sent (ASGI ``raw_path``, latin-1), else the decoded path."""
    raw_path = scope.get("raw_path")
    return raw_path.decode("latin-1") if raw_path else str(scope["path"])


_FRAMED_BY_HEADERS = ("1.1", "1.0")
"""HTTP versions whose requests announce a body (``Content-Length`` or
``Transfer-Encoding``); an HTTP/2 or HTTP/3 request may carry one without either."""


def _is_parsed(framing: Framing) -> bool:
    """Whether the body's type (the first ``Content-Type``, the one Starlette and
    FastAPI read) is one an app parses as data; no type is (FastAPI may read it
    as JSON)."""
    ctype = framing.content_type.partition(";")[0].strip().lower().encode("latin-1")
    if not ctype:
        return True
    return bool(ctype.startswith(PARSED_CONTENT_TYPES) or ctype.endswith((b"+json", b"+xml")))


class InputInspectionMiddleware(Layer):
    """Inspect requests for SQL injection, XSS, path traversal, command injection.

    A request only SQL injection findings would block is passed on as
    ``sink_confirmed`` when the inspector says so (``SQLI_EDGE_MODE``): reported
    here, blocked by the SQL sink at the statement it would change.

    Args:
        app: the ASGI app.
        inspector: the detection engine (shared with ``python -m pynomaly_security replay``).
        monitor: receives an ``INJECTION`` event for every request with findings.
        max_body_size: bytes of body buffered for inspection; more gets ``413``.
        body_read_timeout: seconds the whole body may take to arrive; slower gets
            ``408``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        inspector: Inspector | None = None,
        monitor: SecurityMonitor | None = None,
        max_body_size: int = 1_048_576,
        body_read_timeout: float = 30.0,
    ) -> None:
        if max_body_size < 1:
            raise ValueError("max_body_size must be >= 1")
        self.app = app
        self.inspector = inspector or Inspector()
        self.monitor = monitor
        self.max_body_size = max_body_size
        self.body_read_timeout = check_body_read_timeout(body_read_timeout)
        self.clean = CleanRequests(self.inspector)
        """This layer's memory of bodiless requests found clean (no credential in it)."""
        self._key = self.clean.key
        self._known = self.clean.known
        self._raised: dict[int, Inspector] = {}
        """At most five: 0 for a decision's (``True``; not the key ``True``, which
        equals 1 in a dict) and one per tenant level 1-4."""
        self.inspector.on_reconfigure(self._forget_raised)

    def _forget_raised(self) -> None:
        self._raised = {}

    def _raised_inspector(self, raise_to: int | bool) -> Inspector:
        """The inspector at a raised level: a copy sharing the configured limits,
        exclusions and header choice, rebuilt after a live change of the original.
        ``True``: level 4 in block mode; a level: that level (never below the
        configured one, which a live change may have raised) in the configured mode."""
        key = 0 if raise_to is True else int(raise_to)
        raised = self._raised.get(key)
        if raised is None:
            original = self.inspector
            raised = copy.copy(original)
            raised._listeners = []
            if raise_to is True:
                raised.reconfigure(level=4, mode="block")
            else:
                level = max(key, original.level)
                raised.reconfigure(
                    level=level, mode=original.mode, mode_overrides=original.mode_overrides
                )
            self._raised[key] = raised
        return raised

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.call_app(scope, receive, send)
        # The request's key in the memory of clean requests (CleanRequests.key): the
        # path as sent, undecoded (the key only has to tell requests apart). None
        # over HTTP/2 and /3, where a body needs no header, so no key stands for one.
        key = (
            self._key(
                scope.get("raw_path") or scope["path"], scope["query_string"], scope["headers"]
            )
            if scope.get("http_version", "1.1") in _FRAMED_BY_HEADERS
            else None
        )
        if key is not None and self._known(key) and RAISED_DETECTION not in scope:
            return self.call_app(scope, receive, send)  # known clean: no frame of this layer
        return self._screen(scope, receive, send, key)

    async def _screen(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: tuple[str | bytes, ...] | None,
    ) -> None:
        """Inspect an HTTP request not known clean; serve it or answer it. A clean
        verdict is remembered under ``key`` (:meth:`CleanRequests.key`)."""
        path = _raw_path(scope)
        query_string = scope.get("query_string", b"")
        headers = scope.get("headers", ())
        try:
            framing = read_framing(headers, self.inspector.limits.max_headers)
        except InspectionRefused as exc:
            await self._refuse(scope, receive, send, exc.status, exc.reason)
            return
        body = b""
        if (framing.has_body or scope.get("http_version", "1.1") not in _FRAMED_BY_HEADERS) and (
            _is_parsed(framing) or not self._streams_unread(scope, path)
        ):
            if framing.content_encoding:
                # Starlette does not decode request bodies, an app might: compressed
                # bytes cannot be inspected, so they are not passed on.
                await self._refuse(scope, receive, send, 415, "content_encoding_unsupported")
                return
            declared = content_length(scope)
            if declared is not None and declared > self.max_body_size:
                await self._refuse(scope, receive, send, 413, REQUEST_TOO_LARGE)
                return
            buffered = await read_body(receive, self.max_body_size, self.body_read_timeout)
            if buffered.outcome is BodyOutcome.TOO_LARGE:
                await self._refuse(scope, receive, send, 413, REQUEST_TOO_LARGE)
                return
            if buffered.outcome is BodyOutcome.TIMED_OUT:
                await self._refuse(scope, receive, send, 408, BODY_READ_TIMEOUT)
                return
            if buffered.outcome is BodyOutcome.DISCONNECTED:
                return  # nobody is listening; the app never sees a half body
            body = buffered.body
            receive = replay_receive(body, receive)

        parts = RequestParts(scope["method"], path, query_string, headers, body)
        raise_to = scope.get(RAISED_DETECTION)
        raised = raise_to is not None
        inspector = self._raised_inspector(raise_to) if raise_to is not None else self.inspector
        verdict = inspector.inspect(parts)
        if not verdict.findings and verdict.reject_status is None:
            if key is not None and not raised:
                # Clean on its own (not thanks to a route's exemptions): repeats of it
                # pass after one pass over their headers.
                self.clean.add(key)
            await self.call_app(scope, receive, send)  # the usual case: nothing found
            return
        if verdict.findings and verdict.reject_status is None:
            # Only a suspicious request pays for route matching: the endpoint's
            # @inspection_exempt and declared field types may clear it.
            routes = getattr(getattr(scope.get("app"), "router", None), "routes", None)
            template, policy = match_route_policy(routes or (), scope)
            if template is not None:
                # The template also lets settings exclusions name the route as declared.
                verdict = inspector.inspect(
                    dataclasses.replace(parts, route=template), route_policy=policy
                )
        if verdict.reject_status is not None:
            reason = verdict.reject_reason or "bad_request"
            await self._refuse(scope, receive, send, verdict.reject_status, reason)
            return
        if verdict.blocked or verdict.score >= inspector.threshold:
            # Reported only past the anomaly threshold (blocked, or would have been in
            # detect mode): one weak signal, like a curl User-Agent, raises no alert.
            self._report(scope, verdict)
            if verdict.blocked:
                await error_response(scope, 403, "request_blocked")(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _streams_unread(self, scope: Scope, path: str) -> bool:
        """Whether the route exempts its body from inspection (an upload route): only
        asked for bodies of a type no parser reads, so other requests pay no route
        matching here."""
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", None)
        template, endpoint_policy = match_route_policy(routes or (), scope)
        policy = self.inspector.policy_for(template, path, endpoint_policy)
        return policy is not None and (policy.exempt or "body" in policy.exempt_fields)

    def _report(self, scope: Scope, verdict: Verdict) -> None:
        ctx = get_request_context(scope)
        summary = verdict.summary()
        if ctx is not None:
            ctx.extra["inspection"] = summary
        log.warning(
            EVENT_BLOCKED if verdict.blocked else EVENT_INJECTION,
            # The path and field names are attacker text: escaped for the log line.
            path=safe_text(scope["path"]),
            method=safe_text(scope["method"]),
            score=verdict.score,
            sink_confirmed=verdict.sink_confirmed,
            families=summary["families"],
            rules=summary["rules"],
            fields=sorted({safe_text(f.field) for f in verdict.findings}),
        )
        if self.monitor is not None:
            self.monitor.submit(request_event(EventKind.INJECTION, scope, details=summary))
            if verdict.blocked:
                self.monitor.count("blocked_requests")

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, reason: str
    ) -> None:
        """Answer a request inspection will not pass, and report it
        (:func:`~pynomaly_security.middleware._refusal.refuse`: a ``request_refused``
        audit record, a ``BLOCKED`` event, a warning line); the reason is one of the
        caps table's fixed strings, never request content."""
        await refuse(scope, receive, send, status, reason, monitor=self.monitor)
