"""``DecisionMiddleware``: enforce the decisions in force, right inside tracking.

With no decision and no enforcing list (the usual case) a request costs one
attribute read and one truth test: the layer returns the inner app's awaitable
(``middleware/_asgi.py``). Otherwise it looks the request up in the worker's index
(``index.py``: one dict lookup per scope present, one bisect per list) and, per
action of what applies:

* ``ban``: 403 ``banned``;
* ``read_only``: 403 ``read_only`` for unsafe methods (RFC 9110 section 9.2.1);
* ``require_mfa``: 401 with ``WWW-Authenticate: Bearer
  error="insufficient_user_authentication"`` (RFC 9470) unless the request shows
  MFA: its bearer token's ``amr`` names a second factor (``otp``), or
  ``ctx.extra["mfa"]`` is true (set by an authentication layer outside);
* ``throttle``: 429 with ``Retry-After`` beyond ``DECISION_THROTTLE_PER_MINUTE``
  requests of that decision per minute, counted in the shared store (a store that
  fails refuses: fail closed);
* ``raise_detection_level``: the inspection layer inspects the request at level 4
  (:data:`~pynomaly_security.middleware.inspection.RAISED_DETECTION`).

A refusal is noted (``note_refusal``, repeating: the audit records it once per
client, reason and minute). Health paths and admin networks (the allow-list) are
never refused. What a request is looked up by: its client address (``ip``, ``cidr``
and lists), ``ctx.user_id`` (or an outer authentication's ``scope["user"]``), the
session id an outer layer put in ``ctx.extra["session_id"]``, the SHA-256 of its
``X-API-Key``, its path (``route``) and its ``X-Tenant-ID`` header (``tenant``).
While a ``user``/``session`` decision or an MFA requirement is in force, a request's
``Authorization: Bearer`` token is decoded with the app's authenticator
(``install_authenticator``): its signature and claims only, no store read, for its
user (``sub``), session (``sid``) and ``amr``; a token that does not verify adds nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security._context import RequestContext, get_request_context, note_refusal
from pynomaly_security._log import get_logger
from pynomaly_security.auth.deps import APP_STATE_KEY
from pynomaly_security.auth.users import normalize_username
from pynomaly_security.decisions.index import AllowList, DecisionView, Match
from pynomaly_security.decisions.model import DecisionAction, api_key_fingerprint
from pynomaly_security.exceptions import InvalidToken, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._asgi import passes_through
from pynomaly_security.middleware._refusal import error_response
from pynomaly_security.middleware.inspection import RAISED_DETECTION
from pynomaly_security.storage.base import SlidingWindowStore
from pynomaly_security.tenancy.context import current_tenant

__all__ = ["MFA_VERIFIED", "SESSION_ID", "DecisionMiddleware"]

log = get_logger(__name__)

MFA_VERIFIED = "mfa"
"""``RequestContext.extra`` key: true when the request's session used a second factor."""
SESSION_ID = "session_id"
"""``RequestContext.extra`` key: the request's session id, for ``session`` decisions."""
_SECOND_FACTORS = frozenset({"otp", "mfa", "hwk", "swk", "sms", "fido"})
"""RFC 8176 ``amr`` values of a second factor (the authenticator writes ``otp``)."""
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_MFA_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="a second factor is required"'
)
_WINDOW = 60


class DecisionMiddleware:
    """Refuse or mark requests by the decisions in force.

    Args:
        app: the ASGI app.
        view: the worker's index (kept current by ``DecisionSync``).
        allow: the allow-list (admin networks, health paths).
        store: counts throttled requests; without one a throttle refuses all.
        throttle_per_minute: requests per minute a throttle decision lets through.
        clock: seconds since the epoch; injected by tests.

    References:
        RFC 9470 (step-up authentication challenge), RFC 6585 section 4 (429),
        CrowdSec's bouncer model (https://docs.crowdsec.net/docs/bouncers/intro).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        view: DecisionView,
        allow: AllowList | None = None,
        store: SlidingWindowStore | None = None,
        throttle_per_minute: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.view = view
        self.allow = allow if allow is not None else AllowList()
        self.store = store
        self.throttle_per_minute = throttle_per_minute
        self.clock = clock

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if self.view.index.empty or scope["type"] != "http":
            return self.app(scope, receive, send)  # nothing in force: no frame of this layer
        return self._check(scope, receive, send)

    def _identity(self, scope: Scope, ctx: RequestContext | None) -> None:
        """User, session and MFA from the bearer token, into the context (see above)."""
        if ctx is None:
            return
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and rest.strip():
                    token = rest.strip()
                break
        app = scope.get("app")
        authenticator = getattr(getattr(app, "state", None), APP_STATE_KEY, None)
        if token is None or authenticator is None:
            return
        try:
            claims = authenticator.tokens.decode(token, "access")
        except (InvalidToken, AttributeError):
            return
        if ctx.user_id is None and isinstance(claims.get("sub"), str):
            ctx.user_id = claims["sub"]
        if isinstance(claims.get("sid"), str):
            ctx.extra.setdefault(SESSION_ID, claims["sid"])
        amr = claims.get("amr")
        if isinstance(amr, list) and any(m in _SECOND_FACTORS for m in amr):
            ctx.extra.setdefault(MFA_VERIFIED, True)

    def _pairs(self, scope: Scope) -> tuple[str | None, list[tuple[str, str]]]:
        ctx = get_request_context(scope)
        if self.view.index.needs_identity:
            self._identity(scope, ctx)
        ip = ctx.client_ip if ctx is not None else None
        if ip is None and scope.get("client"):
            ip = scope["client"][0]
        pairs: list[tuple[str, str]] = [("route", scope["path"])]
        if ip is not None:
            pairs.append(("ip", ip))
        user = ctx.user_id if ctx is not None else None
        if user is None and "user" in scope:
            identity = getattr(scope["user"], "identity", None)
            user = identity if isinstance(identity, str) and identity else None
        if user is not None:
            pairs.append(("user", user))
        if ctx is not None and isinstance(ctx.extra.get(SESSION_ID), str):
            pairs.append(("session", ctx.extra[SESSION_ID]))
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                pairs.append(("api_key", api_key_fingerprint(value.decode("latin-1"))))
            elif name == b"x-tenant-id":
                pairs.append(("tenant", value.decode("latin-1")))
        return ip, pairs

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in self.allow.paths:
            await self.app(scope, receive, send)
            return
        ip, pairs = self._pairs(scope)
        if self.view.index.needs_identity:
            await self._user_names(scope, pairs)
        matches = self.view.index.lookup(pairs, ip, self.clock(), current_tenant())
        if not matches or (ip is not None and self.allow.allows_ip(ip)):
            await self.app(scope, receive, send)
            return
        actions = {m.action: m for m in matches}
        if DecisionAction.BAN in actions:
            await self._refuse(scope, receive, send, 403, "banned")
            return
        if DecisionAction.READ_ONLY in actions and scope["method"] not in _SAFE:
            await self._refuse(scope, receive, send, 403, "read_only")
            return
        if DecisionAction.REQUIRE_MFA in actions:
            ctx = get_request_context(scope)
            if ctx is None or ctx.extra.get(MFA_VERIFIED) is not True:
                await self._refuse(
                    scope, receive, send, 401, "mfa_required", {"WWW-Authenticate": _MFA_CHALLENGE}
                )
                return
        throttle = actions.get(DecisionAction.THROTTLE)
        if throttle is not None:
            retry = await self._throttled(throttle)
            if retry is not None:
                await self._refuse(
                    scope, receive, send, 429, "throttled", {"Retry-After": str(retry)}
                )
                return
        if DecisionAction.RAISE_DETECTION_LEVEL in actions:
            scope[RAISED_DETECTION] = True
        await self.app(scope, receive, send)

    async def _user_names(self, scope: Scope, pairs: list[tuple[str, str]]) -> None:
        """A user decision names the user as they sign in (what incidents and admins
        see); a token carries the user's id. The name too, then: the one a login
        request claims, and the signed-in user's, read from the app's user store
        (only while user decisions are in force). A store that cannot answer adds
        nothing (the id still matches)."""
        ctx = get_request_context(scope)
        if ctx is None:
            return
        names = set()
        if ctx.login_username:
            names.add(normalize_username(ctx.login_username))
        app = scope.get("app")
        authenticator = getattr(getattr(app, "state", None), APP_STATE_KEY, None)
        if ctx.user_id is not None and authenticator is not None:
            try:
                record = await authenticator.users.get(ctx.user_id)
            except StorageError as exc:
                log.warning("decisions_user_unresolved", error=safe_text(str(exc)))
                record = None
            if record is not None:
                names.add(record.username)
        for name in names:
            if ("user", name) not in pairs:
                pairs.append(("user", name))

    async def _throttled(self, match: Match) -> int | None:
        """None if the request is within the throttle; else seconds to wait."""
        if self.store is None:
            return _WINDOW
        try:
            (
                allowed,
                (prev_count, prev_ttl, _count, ttl),
            ) = await self.store.acquire_sliding_window_stats(
                "dec:thr:" + match.key, self.throttle_per_minute, _WINDOW
            )
        except StorageError:
            return 5  # fail closed: a throttled value is not let through unchecked
        if allowed:
            return None
        wait = prev_ttl if prev_count else ttl - _WINDOW
        return max(1, min(_WINDOW, math.ceil(wait)))

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        reason: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Repeating: a banned client hammering the app is one audit record a minute.
        note_refusal(scope, reason, status, repeating=True)
        response = error_response(scope, status, reason)
        if headers:
            response.headers.update(headers)
        await response(scope, receive, send)
