"""User tracking: who made each request, a correlation id, and login outcomes.

For every HTTP request (and websocket connection) it resolves the client IP
through the trusted-proxy resolver, accepts a well-formed ``X-Request-ID`` or
generates one, stores a :class:`~pynomaly_security._context.RequestContext` in
``scope["state"]`` and binds ``request_id`` / ``client_ip`` into structlog's
contextvars for the duration of the request (pure ASGI, so the binding reaches
the endpoint; ``BaseHTTPMiddleware`` would break that).

On routes marked as login routes it reads the user name from the (small,
bounded) JSON or form body, refuses a locked-out client IP with ``429``, and
turns the answer into a login success (2xx) or failure (401/403) event.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import (
    RATE_LIMITED,
    STATE_KEY,
    AccessRow,
    RequestContext,
    access_row,
)
from pynomaly_security.middleware._body import BodyOutcome, read_body, replay_receive
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.monitor.activity import UserTracker
from pynomaly_security.monitor.events import EventKind, SecurityEvent
from pynomaly_security.monitor.login_attempts import LoginAttemptTracker
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.network.client_ip import ClientIPResolver

if TYPE_CHECKING:
    from pynomaly_security.middleware.audit import AuditMiddleware
    from pynomaly_security.middleware.headers import SecurityHeadersMiddleware

__all__ = ["UserTrackingMiddleware"]

_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
_LOGIN_BODY_LIMIT = 64 * 1024
_USERNAME_FIELDS = ("username", "email", "login", "user")


def _structlog_vars() -> tuple[contextvars.ContextVar[Any], contextvars.ContextVar[Any]]:
    """The ContextVars behind structlog's ``request_id`` and ``client_ip`` keys.

    ``bind_contextvars``/``reset_contextvars`` cost ~1.3 µs per request against
    ~0.4 µs for setting and resetting the two variables directly; structlog's
    ``merge_contextvars`` reads the same variables either way. Each token names
    its variable (``Token.var``), so no private structlog name is needed."""
    tokens = structlog.contextvars.bind_contextvars(request_id=None, client_ip=None)
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["request_id"].var, tokens["client_ip"].var


_ID_SUFFIXES = tuple(f"{i:02x}" for i in range(256))


def _request_ids(prefix: str, start: int) -> Iterator[str]:
    """Generated request ids: ``prefix`` (per process, random) and a 16-digit hex
    counter. Unique across workers and hosts without a getrandom() syscall per
    request (uuid4 costs ~4 µs here). Formatting one int costs more than the rest
    of this layer's request-id work, so ids are made 256 at a time, in C (the
    counter's last two digits are ``_ID_SUFFIXES``); ``next()`` is then a C call."""
    blocks = itertools.count(start)
    return itertools.chain.from_iterable(
        map(lambda block: list(map(f"{prefix}{block:014x}".__add__, _ID_SUFFIXES)), blocks)
    )


def add_header_once(message: Message, header: tuple[bytes, bytes]) -> None:
    """Append ``header`` to a response start message unless the app set it."""
    headers = list(message.get("headers", ()))
    for name, _ in headers:
        if name.lower() == header[0]:
            break
    else:
        headers.append(header)
    message["headers"] = headers


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _username_from_body(body: bytes, content_type: bytes | None) -> str | None:
    ctype = (content_type or b"").split(b";", 1)[0].strip().lower()
    data: Any
    try:
        if ctype == b"application/json" or ctype.endswith(b"+json"):
            data = json.loads(body)
        elif ctype == b"application/x-www-form-urlencoded":
            data = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        else:
            return None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for name in _USERNAME_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value[:256]
    return None


def _user_from_scope(scope: Scope) -> str | None:
    # Starlette's AuthenticationMiddleware puts a BaseUser in scope["user"].
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        identity = getattr(user, "identity", None) or getattr(user, "display_name", None)
        return str(identity) if identity else None
    return None


class UserTrackingMiddleware:
    """Identify each request and track what each user does.

    Args:
        app: the ASGI app.
        resolver: client IP resolver (trusted proxies); default: the socket peer.
        tracker: where per-user activity is kept; ``None`` keeps none.
        monitor: receives login and request events; ``None`` sends none.
        login_attempts: failed-login counts; locked IPs get 429 on login routes.
        login_paths: paths (exact) treated as login routes for ``POST``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: ClientIPResolver | None = None,
        tracker: UserTracker | None = None,
        monitor: SecurityMonitor | None = None,
        login_attempts: LoginAttemptTracker | None = None,
        login_paths: Iterable[str] = ("/login",),
    ) -> None:
        self.app = app
        self.resolver = resolver or ClientIPResolver()
        self.tracker = tracker
        self.monitor = monitor
        self.login_attempts = login_attempts
        self.login_paths = frozenset(login_paths)
        self._plain_peer = not self.resolver.trusts_forwarding
        self._ids = _request_ids(secrets.token_hex(8), secrets.randbelow(1 << 32))
        self._request_id_var, self._client_ip_var = _structlog_vars()
        # A login-lockout layer right inside passes every other request through
        # untouched; those requests skip its frame (same login paths, so the same
        # requests reach it).
        self._non_login_app: ASGIApp = app
        inner = getattr(app, "login_lockout_bypass", None)
        if inner is not None and getattr(app, "login_paths", None) == self.login_paths:
            self._non_login_app = inner
        # An input-inspection layer next: this layer looks the request up in its
        # memory of clean requests itself, and a repeated clean request goes straight
        # to what it wraps (InputInspectionMiddleware.request_key / screen).
        inner_app = self._non_login_app
        self._inspection = inner_app if isinstance(inner_app, InputInspectionMiddleware) else None
        # Set by SecurityMiddleware, which serves headers and audit in this layer.
        self._headers: SecurityHeadersMiddleware | None = None
        self._audit: AuditMiddleware | None = None

    def _open(self, scope: Scope, kind: str) -> RequestContext:
        """The request context: request id, client IP, whether a login route."""
        request_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.fullmatch(value) is not None:
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = next(self._ids)
        client = scope.get("client")
        if self._plain_peer and client and ":" not in client[0]:
            client_ip: str | None = client[0]  # no proxies trusted: the IPv4 peer as given
        else:
            client_ip = self.resolver.resolve(scope)
        is_login = (
            kind == "http" and scope["method"] == "POST" and scope["path"] in self.login_paths
        )
        # Positional: ~0.15 µs less than keywords, on every request.
        ctx = RequestContext(request_id, client_ip, None, is_login)
        state = scope.get("state")
        if state is None:
            scope["state"] = {STATE_KEY: ctx}
        else:
            state[STATE_KEY] = ctx
        return ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request: the app behind one ``send`` wrapper, which captures the status
        and adds ``X-Request-ID`` and, in the assembled stack
        (:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`), the
        security headers and the audit's pre-response commit; then the access record
        and the activity/monitor bookkeeping. One coroutine frame per request."""
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = self._open(scope, kind)
        rid_token = self._request_id_var.set(ctx.request_id)
        ip_token = self._client_ip_var.set(ctx.client_ip)
        headers = self._headers
        audit = self._audit
        common = None
        secure = False
        if headers is not None:
            common, secure, buffered = headers.for_request(scope)
            if buffered:
                # The docs page is buffered to hash its inline scripts into its CSP;
                # the responder applies the headers itself.
                send = headers.docs_responder(send, common, secure)
                common = None
        commit = audit.commit_events if audit is not None else None
        status = 500
        rid_header = (b"x-request-id", ctx.request_id.encode("ascii"))

        async def send_tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if common is not None:
                    headers.apply(message, common, secure, rid_header)  # type: ignore[union-attr]
                else:
                    add_header_once(message, rid_header)
                if commit is not None and (ctx.is_login_route or ctx.extra):
                    # Security events are committed before the client sees the answer.
                    await commit(scope, status)
            await send(message)

        error: str | None = None
        try:
            app = self._non_login_app
            inspection = self._inspection
            if inspection is not None and not ctx.is_login_route:
                key = inspection.request_key(scope)
                if key is not None and inspection.inspector.known_clean(key):
                    app = inspection.app
                else:
                    app = functools.partial(inspection.screen, key=key)
            if ctx.is_login_route:
                app = self.app
                prepared = await self._prepare_login(scope, receive, send_tracked, ctx)
                if prepared is None:
                    return
                receive, refusal = prepared
                if refusal is not None:
                    app = refusal
            await app(scope, receive, send_tracked)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            elapsed = time.perf_counter() - started
            now = time.time()
            row = access_row(
                now - elapsed,
                scope["method"],
                scope["path"],
                status,
                elapsed,
                ctx.request_id,
                ctx.user_id,  # read after the app ran: its authentication may set it
                ctx.client_ip,
            )
            if audit is not None and RATE_LIMITED not in ctx.extra:
                # A flood refused by the rate limiter is not written one record at a time.
                audit.queue_access(row)
                if audit.log_line:
                    audit.log_access(row, error)
            user_id = ctx.user_id or (_user_from_scope(scope) if "user" in scope else None)
            if ctx.is_login_route or (user_id is not None and self.monitor is not None):
                self._after(scope, ctx, user_id, status, now, row)
            elif self.tracker is not None:
                # The usual request (not a login, nobody monitored): its activity row only.
                self.tracker.add_row(user_id, ctx.client_ip, row)
            self._client_ip_var.reset(ip_token)
            self._request_id_var.reset(rid_token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._open(scope, "websocket")
        rid_token = self._request_id_var.set(ctx.request_id)
        ip_token = self._client_ip_var.set(ctx.client_ip)
        try:
            await self.app(scope, receive, send)
        finally:
            self._client_ip_var.reset(ip_token)
            self._request_id_var.reset(rid_token)

    async def _prepare_login(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext
    ) -> tuple[Receive, ASGIApp | None] | None:
        """Read the user name from the body and decide whether the client IP is
        locked out. Returns the replaying ``receive`` and, for a locked IP, the
        429 response to serve instead of the app; ``None`` when already answered."""
        buffered = await read_body(receive, _LOGIN_BODY_LIMIT)
        if buffered.outcome is BodyOutcome.TOO_LARGE:
            response = JSONResponse(
                {"error": "request_too_large", "request_id": ctx.request_id}, status_code=413
            )
            await response(scope, receive, send)
            return None
        if buffered.outcome is BodyOutcome.DISCONNECTED:
            return None
        ctx.login_username = _username_from_body(buffered.body, _header(scope, b"content-type"))
        refusal: ASGIApp | None = None
        if self.login_attempts is not None:
            until = self.login_attempts.locked_until(ctx.client_ip)
            if until is not None:
                retry = max(1, math.ceil(until - self.login_attempts.clock()))
                ctx.extra["login_locked"] = True
                refusal = JSONResponse(
                    {
                        "error": "too_many_login_attempts",
                        "request_id": ctx.request_id,
                        "retry_after": retry,
                    },
                    status_code=429,
                    headers={"Retry-After": str(retry)},
                )
        return replay_receive(buffered.body, receive), refusal

    def _after(
        self,
        scope: Scope,
        ctx: RequestContext,
        user_id: str | None,
        status: int,
        now: float,
        row: AccessRow,
    ) -> None:
        """Activity, login outcome and monitor event of a login attempt or of a
        request by a known user, once the request has ended."""
        if ctx.is_login_route and ctx.login_username:
            # A login attempt is part of the named user's activity, whatever its outcome:
            # that is where an investigator looks for "who tried to get in as alice".
            user_id = ctx.login_username
        if self.tracker is not None:
            self.tracker.add_row(user_id, ctx.client_ip, row)
        monitor = self.monitor
        if ctx.is_login_route:
            self._login_outcome(scope, ctx, status, now)
        elif monitor is not None and user_id is not None:
            monitor.submit(
                SecurityEvent(
                    kind=EventKind.REQUEST,
                    source_ip=ctx.client_ip,
                    user_id=user_id,
                    path=scope["path"],
                    method=scope["method"],
                    status_code=status,
                    request_id=ctx.request_id,
                    timestamp=now,
                )
            )

    def _login_outcome(self, scope: Scope, ctx: RequestContext, status: int, now: float) -> None:
        username = ctx.login_username
        if status in (401, 403):
            details: dict[str, Any] = {"username": username}
            if self.login_attempts is not None:
                counts = self.login_attempts.record_failure(ctx.client_ip, username)
                details.update(ip_failures=counts.ip_failures, user_failures=counts.user_failures)
            kind = EventKind.LOGIN_FAILURE
        elif 200 <= status < 300:
            if self.login_attempts is not None:
                self.login_attempts.record_success(ctx.client_ip, username)
            details = {"username": username}
            kind = EventKind.LOGIN_SUCCESS
        else:
            return
        if self.monitor is not None:
            self.monitor.submit(
                SecurityEvent(
                    kind=kind,
                    source_ip=ctx.client_ip,
                    user_id=username,
                    path=scope["path"],
                    method="POST",
                    status_code=status,
                    request_id=ctx.request_id,
                    timestamp=now,
                    details=details,
                )
            )
