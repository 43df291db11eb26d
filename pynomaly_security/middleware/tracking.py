"""User tracking: who made each request, a correlation id, and login outcomes.

For every HTTP request (and websocket connection) it resolves the client IP
through the trusted-proxy resolver, gives the request a server-generated id,
stores a :class:`~pynomaly_security._context.RequestContext` in
``scope["state"]`` and binds ``request_id`` / ``client_ip`` into structlog's
contextvars for the duration of the request (pure ASGI, so the binding reaches
the endpoint; ``BaseHTTPMiddleware`` would break that).

The request id is always the server's own: a client's ``X-Request-ID`` is kept
only as a separate, labelled field (``client_request_id`` in the context, the
log context and the audit's security events; echoed as
``X-Client-Request-ID``), when it is well-formed (1 to 128 characters of
``A-Z a-z 0-9 . _ : -``, starting with a letter or digit). Accepted as the
request id, a client could give two requests the same id in the audit trail,
or reuse an id the server issued to someone else.

With :class:`~pynomaly_security.network.hosts.TrustedHosts`, a request whose
``Host`` header is not one of the app's names (or that has none, or two) is
answered ``400`` before any inner layer or the app sees it.

On routes marked as login routes it reads the user name from the (small,
bounded) JSON or form body and turns the answer into a login success (2xx) or
failure (401/403) event for the monitor. Counting failures and locking out is
the shared lockout's work (:class:`~pynomaly_security.auth.login_guard.LoginLockoutMiddleware`).

It knows only the app it wraps. The stack's fused layer
(:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`) runs this
flow with a :class:`~pynomaly_security.middleware.headers.HeaderPolicy` and an
:class:`~pynomaly_security.middleware.audit.AccessRecorder` in its one ``send``
wrapper.
"""

from __future__ import annotations

import contextvars
import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from pynomaly_security._context import (
    STATE_KEY,
    AccessRow,
    RequestContext,
    note_refusal,
)
from pynomaly_security._log import get_logger
from pynomaly_security.auth.login_body import DEFAULT_USERNAME_FIELDS, login_names
from pynomaly_security.logsafe import safe_text
from pynomaly_security.metrics.apptime import APP_TIME
from pynomaly_security.metrics.counters import RequestCounts
from pynomaly_security.middleware._asgi import Layer
from pynomaly_security.middleware._body import BodyOutcome, read_body, replay_receive
from pynomaly_security.middleware._refusal import (
    BODY_READ_TIMEOUT,
    REQUEST_TOO_LARGE,
    check_body_read_timeout,
    refuse,
)
from pynomaly_security.middleware.audit import AccessRecorder
from pynomaly_security.middleware.headers import HeaderPolicy
from pynomaly_security.middleware.sqlsink import SinkGuard
from pynomaly_security.monitor.activity import UserTracker
from pynomaly_security.monitor.events import EventKind, SecurityEvent
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.network.hosts import TrustedHosts
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.guard import CURRENT_REQUEST, keeping_body, release_sink
from pynomaly_security.sql.guard import POLICY_KEY as SQL_POLICY

__all__ = ["CLIENT_REQUEST_ID_HEADER", "UserTrackingMiddleware"]

log = get_logger(__name__)

HOST_REFUSED = "host_refused"
CLIENT_REQUEST_ID_HEADER = b"x-client-request-id"

_CLIENT_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Nanosecond clocks: the access row's whole microseconds come from integer
# arithmetic, with no float products and int() calls (about 600 instructions per
# request under valgrind).
_perf_ns = time.perf_counter_ns
_time_ns = time.time_ns
_LOGIN_BODY_LIMIT = 64 * 1024
_FRAMED_BY_HEADERS = frozenset({"1.0", "1.1"})


def _structlog_vars() -> tuple[
    contextvars.ContextVar[Any], contextvars.ContextVar[Any], contextvars.ContextVar[Any]
]:
    """The ContextVars behind structlog's ``request_id``, ``client_ip`` and
    ``client_request_id`` keys.

    ``bind_contextvars``/``reset_contextvars`` cost ~1.3 µs per request against
    ~0.4 µs for setting and resetting the two variables directly; structlog's
    ``merge_contextvars`` reads the same variables either way. Each token names
    its variable (``Token.var``), so no private structlog name is needed."""
    tokens = structlog.contextvars.bind_contextvars(
        request_id=None, client_ip=None, client_request_id=None
    )
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["request_id"].var, tokens["client_ip"].var, tokens["client_request_id"].var


_ID_SUFFIXES = tuple(f"{i:02x}" for i in range(256))
_RID = b"x-request-id"


def _request_ids(prefix: str, start: int) -> Iterator[tuple[str, tuple[bytes, bytes]]]:
    """Generated request ids, each with its ``X-Request-ID`` response header:
    ``prefix`` (per process, random) and a 16-digit hex counter. Unique across
    workers and hosts without a getrandom() syscall per request (uuid4 costs ~4 µs
    here). Formatting one int costs more than the rest of this layer's request-id
    work, so ids are made 256 at a time, in C (the counter's last two digits are
    ``_ID_SUFFIXES``); ``next()`` is then a C call."""

    def block(n: int) -> list[tuple[str, tuple[bytes, bytes]]]:
        ids = list(map(f"{prefix}{n:014x}".__add__, _ID_SUFFIXES))
        return list(zip(ids, zip(itertools.repeat(_RID), map(str.encode, ids)), strict=True))

    return itertools.chain.from_iterable(map(block, itertools.count(start)))


def add_header_once(message: Message, header: tuple[bytes, bytes]) -> None:
    """Append ``header`` to a response start message unless the app set it."""
    headers = list(message.get("headers", ()))
    for name, _ in headers:
        if name.lower() == header[0]:
            break
    else:
        headers.append(header)
    message["headers"] = headers


def _adding_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    """``send`` that adds ``header`` to the response start (unless the app set it)."""

    def adding(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            add_header_once(message, header)
        return send(message)

    return adding


async def _refuse_host(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a request for a host the app is not (TrustedHosts)."""
    ctx = scope["state"][STATE_KEY]
    # Audited once per client per window: a scanner spraying Host names, or a
    # health check configured with the wrong one, repeats it.
    note_refusal(scope, "invalid_host", 400, repeating=True)
    response = JSONResponse(
        {"error": "invalid_host", "detail": "Invalid host header", "request_id": ctx.request_id},
        status_code=400,
    )
    await response(scope, receive, send)


async def _commit_then_send(
    commit: Callable[[Scope, int], Awaitable[None]],
    scope: Scope,
    status: int,
    send: Send,
    message: Message,
) -> None:
    await commit(scope, status)
    await send(message)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _display_name(name: str) -> str:
    # A lone surrogate ("\ud800" in JSON): no account has it, and every later use
    # of this name (monitor events, logs, audit) encodes it. Kept distinct.
    try:
        name.encode()
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode()
    return name


def _user_from_scope(scope: Scope) -> str | None:
    # Starlette's AuthenticationMiddleware puts a BaseUser in scope["user"].
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        identity = getattr(user, "identity", None) or getattr(user, "display_name", None)
        return str(identity) if identity else None
    return None


def _ended(
    kind: EventKind,
    scope: Scope,
    ctx: RequestContext,
    user_id: str | None,
    status: int,
    now: float,
    *,
    method: str | None = None,
    details: dict[str, Any] | None = None,
) -> SecurityEvent:
    """The monitor's event about a request that has ended. Its tenant is the request
    context's: this layer runs outside the tenancy layer, where the event's default
    (the current tenant) is not set."""
    return SecurityEvent(
        kind=kind,
        source_ip=ctx.client_ip,
        user_id=user_id,
        path=scope["path"],
        method=method or scope["method"],
        status_code=status,
        request_id=ctx.request_id,
        timestamp=now,
        tenant=ctx.tenant,
        details=details or {},
    )


class UserTrackingMiddleware(Layer):
    """Identify each request and track what each user does.

    Args:
        app: the ASGI app.
        resolver: client IP resolver (trusted proxies); default: the socket peer.
        tracker: where per-user activity is kept; ``None`` keeps none.
        monitor: receives login and request events; ``None`` sends none.
        login_paths: paths (exact) treated as login routes for ``POST``.
        hosts: the ``Host`` names the app answers to; ``None`` checks none.
        body_read_timeout: seconds a login body may take to arrive; slower gets
            ``408 body_read_timeout``.
        username_fields: the login body's user-name fields, read as
            :func:`~pynomaly_security.auth.login_body.login_names` reads them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: ClientIPResolver | None = None,
        tracker: UserTracker | None = None,
        monitor: SecurityMonitor | None = None,
        login_paths: Iterable[str] = ("/login",),
        hosts: TrustedHosts | None = None,
        body_read_timeout: float = 30.0,
        username_fields: Iterable[str] = DEFAULT_USERNAME_FIELDS,
    ) -> None:
        self.app = app
        self.username_fields = tuple(username_fields)
        self.resolver = resolver or ClientIPResolver()
        self.body_read_timeout = check_body_read_timeout(body_read_timeout)
        self.hosts = hosts if hosts is not None and not hosts.allow_any else None
        self.tracker = tracker
        # UserTracker.add_row without its call: the usual request's one append.
        self._track = tracker.append_row if tracker is not None else None
        self.monitor = monitor
        self.login_paths = frozenset(login_paths)
        self._plain_peer = not self.resolver.trusts_forwarding
        self._ids = _request_ids(secrets.token_hex(8), secrets.randbelow(1 << 32))
        self._request_id_var, self._client_ip_var, self._client_rid_var = _structlog_vars()
        # The security headers and the access audit, served in this layer's send
        # wrapper by the stack's fused layer (SecurityMiddleware sets them).
        self._headers: HeaderPolicy | None = None
        self._access: AccessRecorder | None = None
        # The SQL sink, served in this layer's coroutine by the fused layer.
        self._sql_sink: SinkGuard | None = None
        # The metrics' per-worker counts, filled where the request ends (fused layer).
        self._metrics: RequestCounts | None = None

    def _scan(self, scope: Scope) -> tuple[bytes | None, bool]:
        """One pass over the request headers: the client's ``X-Request-ID`` (the
        first, when well-formed; else ``None``) and whether the ``Host`` header is
        one the app answers to."""
        client_rid: bytes | None = None
        sent = False
        host: bytes | None = None
        hosts = 0
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                hosts += 1
            elif name == _RID and not sent:
                sent = True
                if _CLIENT_REQUEST_ID.fullmatch(value) is not None:
                    client_rid = bytes(value)
        if self.hosts is None:
            return client_rid, True
        return client_rid, self._host_allowed(host, hosts)

    def _host_allowed(self, host: bytes | None, hosts: int) -> bool:
        """Whether a request with ``hosts`` ``Host`` headers, the last ``host``, is
        for a host the app answers to (a refusal is logged once per host)."""
        trusted = self.hosts
        if trusted is None:
            return True
        host_ok = hosts == 1 and (host in trusted.seen or trusted.allows(host))
        if not host_ok and trusted.first_refusal(host if hosts == 1 else b"<%d>" % hosts):
            log.warning(
                HOST_REFUSED,
                host=safe_text(host[:256].decode("latin-1")) if host is not None else None,
                host_headers=hosts,
                hint="add the app's host names to PYNOMALY_SECURITY__ALLOWED_HOSTS",
            )
        return host_ok

    def _open(self, scope: Scope) -> tuple[RequestContext, bool]:
        """The request context of a websocket (request id, client IP, the client's
        own id) and whether its ``Host`` is allowed."""
        client_rid, host_ok = self._scan(scope)
        ctx = RequestContext(next(self._ids)[0], self._client_ip(scope))
        if client_rid is not None:
            ctx.client_request_id = client_rid.decode("ascii")
        state = scope.get("state")
        if state is None:
            scope["state"] = {STATE_KEY: ctx}
        else:
            state[STATE_KEY] = ctx
        return ctx, host_ok

    def _client_ip(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if self._plain_peer and client and ":" not in client[0]:
            return client[0]  # type: ignore[no-any-return]  # no proxies trusted: the IPv4 peer
        return self.resolver.resolve(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request: the app behind one ``send`` wrapper, which captures the status
        and adds ``X-Request-ID`` and, in the fused layer, the security headers and
        the audit's pre-response commit; then the access record and the
        activity/monitor bookkeeping. One coroutine frame per request: this runs on
        every request, so it is written for few bytecodes and calls."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = _perf_ns()
        # One request in the metrics' sample: the app's time is measured around the app
        # (AppTimer), the stack's is the rest.
        counts = self._metrics
        app_ns: list[int] | None = None
        if counts is not None and not started & counts.sample_mask:
            scope[APP_TIME] = app_ns = [0]
        method = scope["method"]
        path = scope["path"]
        request_id, rid_header = next(self._ids)
        # The client's X-Request-ID and the Host, from one dict built in C; a
        # request that repeats a header name (rare) takes the loop of _scan.
        headers = scope["headers"]
        named = dict(headers)
        if len(named) == len(headers):
            client_rid = named.get(_RID)
            if client_rid is not None:
                client_rid = bytes(client_rid) if _CLIENT_REQUEST_ID.fullmatch(client_rid) else None
            trusted = self.hosts
            host_ok = trusted is None or named.get(b"host") in trusted.seen
            if not host_ok:
                host_ok = self._host_allowed(named.get(b"host"), 1 if b"host" in named else 0)
        else:
            client_rid, host_ok = self._scan(scope)
        is_login = method == "POST" and path in self.login_paths
        app = self.call_app
        if not host_ok:
            # An unknown Host: refused before any inner layer (or the app, which
            # would build its URLs and redirects from it) sees the request.
            app = _refuse_host
            is_login = False
        policy = self._headers
        common: tuple[tuple[bytes, bytes], ...] = ()
        secure = False
        if policy is not None:
            common, buffered, secure = policy.for_request(scope)
            if buffered:
                # The docs page is buffered to hash its inline scripts into its
                # CSP; the responder applies the headers itself.
                send = policy.docs_responder(send, common, secure)
                policy = None
        # _client_ip() inlined and the activity row appended in one C call (UserTracker.
        # append_row): 556,572 -> 551,290-554,819 instructions per GET through uvicorn
        # (`bench/overhead.py --instructions --only get`; more than the two calls' own
        # bytecode: the interpreter's caches also moved).
        client = scope.get("client")
        client_ip = (
            client[0]
            if self._plain_peer and client and ":" not in client[0]
            else self.resolver.resolve(scope)
        )
        ctx = RequestContext(request_id, client_ip, is_login)
        try:
            scope["state"][STATE_KEY] = ctx
        except KeyError:
            scope["state"] = {STATE_KEY: ctx}
        rid_token = self._request_id_var.set(request_id)
        ip_token = self._client_ip_var.set(client_ip)
        client_token: contextvars.Token[Any] | None = None
        if client_rid is not None:
            ctx.client_request_id = client_rid.decode("ascii")
            client_token = self._client_rid_var.set(ctx.client_request_id)
            send = _adding_header(send, (CLIENT_REQUEST_ID_HEADER, client_rid))
        access = self._access
        commit = access.commit if access is not None else None
        # The SQL sink: SinkGuard.open and .close, inlined (their calls cost 1,200
        # instructions per request in process, `bench/overhead.py --components
        # --instructions`, about 0.2 points of the GET's share of bare).
        sql_sink = self._sql_sink
        if sql_sink is not None:
            scope["state"][SQL_POLICY] = sql_sink.policy
            sink_token = CURRENT_REQUEST.set(scope)
            if (
                b"content-length" in named
                or b"transfer-encoding" in named
                or len(named) != len(headers)
                or scope.get("http_version") not in _FRAMED_BY_HEADERS
            ):
                # A body may follow (HTTP/1 announces one in these headers): the
                # sink keeps what the app reads of it.
                receive = keeping_body(scope, receive)
        status = 0  # until the response starts

        # A plain function returning the awaitable, not a coroutine function: the
        # response's two messages then cost two calls, not two coroutines. Only a
        # request with security events to commit first (rare) gets a coroutine.
        # What it reads is bound as default values, not closed over: only ``status``
        # is a cell, instead of ten cells made on every request (about 2,000
        # instructions per request under valgrind, the cells and their GC).
        def send_tracked(
            message: Message,
            send: Send = send,
            policy: HeaderPolicy | None = policy,
            common: tuple[tuple[bytes, bytes], ...] = common,
            secure: bool = secure,
            rid_header: tuple[bytes, bytes] = rid_header,
            commit: Callable[[Scope, int], Awaitable[None]] | None = commit,
            is_login: bool = is_login,
            ctx: RequestContext = ctx,
            scope: Scope = scope,
        ) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if policy is not None:
                    policy.apply(message, common, secure, rid_header)
                else:
                    add_header_once(message, rid_header)
                if commit is not None and (is_login or ctx.extra):
                    # Security events are committed before the client sees the answer.
                    return _commit_then_send(commit, scope, status, send, message)
            return send(message)

        error: str | None = None
        try:
            if is_login:
                replay = await self._read_login(scope, receive, send_tracked, ctx)
                if replay is None:
                    return
                receive = replay
            await app(scope, receive, send_tracked)
        except SQLInjectionBlocked:
            if sql_sink is None or status:
                error = SQLInjectionBlocked.__name__
                raise  # not ours, or a streaming response was under way
            await sql_sink.refuse(scope, receive, send_tracked)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            if not status:
                status = 500  # no response: what the server answers
            if sql_sink is not None:
                CURRENT_REQUEST.reset(sink_token)
                sink = release_sink(scope)
                if sink is not None and sink.reports:
                    sql_sink.report(scope, sink)
            elapsed = _perf_ns() - started
            now = _time_ns()
            # access_row(), inlined: this runs on every request.
            row: AccessRow = (
                (now - elapsed) // 1000,
                method,
                path,
                status,
                (elapsed + 500) // 1000,
                request_id,
                ctx.user_id,  # read after the app ran: its authentication may set it
                client_ip,
            )
            if access is not None:
                if ctx.extra or access.log_line:
                    access.finish(row, ctx.extra, error, ctx.client_request_id)
                else:
                    access.queue(row)  # finish() of a request with nothing in its context
            if counts is not None:
                # A dict increment per request, keyed by the id of the matched route (the
                # router left it in the scope; FastAPI's routes are not hashable); labels
                # are made off the request path. Rare requests (blocked, refused, 5xx,
                # one in `latency_sample`) say more.
                route = scope.get("route")
                if counts.by_tenant:
                    counts.tenant_request(ctx.tenant, route)
                else:
                    try:
                        counts.routes[id(route)] += 1
                    except KeyError:  # a route's first request (a try costs nothing in 3.11)
                        counts.first(route)
                if ctx.extra or status >= 500 or app_ns is not None:
                    counts.note(scope, route, ctx.extra, status, elapsed, app_ns, ctx.tenant)
            user_id = ctx.user_id or (_user_from_scope(scope) if "user" in scope else None)
            if is_login or (user_id is not None and self.monitor is not None):
                self._after(scope, ctx, user_id, status, now / 1e9, row)
            elif self._track is not None:
                # The usual request (not a login, nobody monitored): its activity row only.
                self._track((user_id, client_ip, row, ctx.tenant))
            if status == 404 and self.monitor is not None:
                # Any client's 404, for scanner sweeps (issue 16): one comparison on
                # every request, an event only on a miss.
                self._not_found(scope, ctx, status, now)
            if client_token is not None:
                self._client_rid_var.reset(client_token)
            self._client_ip_var.reset(ip_token)
            self._request_id_var.reset(rid_token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx, host_ok = self._open(scope)
        if not host_ok:
            # Closing before accepting: the server answers the handshake with 403.
            await WebSocketClose(code=1008, reason="invalid host header")(scope, receive, send)
            return
        rid_token = self._request_id_var.set(ctx.request_id)
        ip_token = self._client_ip_var.set(ctx.client_ip)
        client_token = (
            self._client_rid_var.set(ctx.client_request_id)
            if ctx.client_request_id is not None
            else None
        )
        try:
            await self.app(scope, receive, send)
        finally:
            if client_token is not None:
                self._client_rid_var.reset(client_token)
            self._client_ip_var.reset(ip_token)
            self._request_id_var.reset(rid_token)

    async def _read_login(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext
    ) -> Receive | None:
        """Read the user name from a login body; the ``receive`` that replays the
        body, or ``None`` when the request was answered (too large, too slow) or
        the client left."""
        buffered = await read_body(receive, _LOGIN_BODY_LIMIT, self.body_read_timeout)
        if buffered.outcome is BodyOutcome.TOO_LARGE:
            await refuse(scope, receive, send, 413, REQUEST_TOO_LARGE, monitor=self.monitor)
            return None
        if buffered.outcome is BodyOutcome.TIMED_OUT:
            await refuse(scope, receive, send, 408, BODY_READ_TIMEOUT, monitor=self.monitor)
            return None
        if buffered.outcome is BodyOutcome.DISCONNECTED:
            return None
        # The login guard's reader: the name FastAPI will read, normalized as the
        # lockout counts it (the first of the configured fields the body gives).
        names = await login_names(scope, buffered.body, self.username_fields)
        ctx.login_username = _display_name(names[0]) if names else None
        return replay_receive(buffered.body, receive)

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
            self.tracker.add_row(user_id, ctx.client_ip, row, ctx.tenant)
        monitor = self.monitor
        if ctx.is_login_route:
            self._login_outcome(scope, ctx, status, now)
        elif monitor is not None and user_id is not None:
            monitor.submit(_ended(EventKind.REQUEST, scope, ctx, user_id, status, now))

    def _not_found(self, scope: Scope, ctx: RequestContext, status: int, now: float) -> None:
        if self.monitor is not None:
            self.monitor.submit(_ended(EventKind.NOT_FOUND, scope, ctx, ctx.user_id, status, now))

    def _login_outcome(self, scope: Scope, ctx: RequestContext, status: int, now: float) -> None:
        username = ctx.login_username
        if status in (401, 403):
            kind = EventKind.LOGIN_FAILURE
        elif 200 <= status < 300:
            kind = EventKind.LOGIN_SUCCESS
        else:
            return
        if self.monitor is not None:
            self.monitor.submit(
                _ended(
                    kind,
                    scope,
                    ctx,
                    username,
                    status,
                    now,
                    method="POST",
                    details={"username": username},
                )
            )
