"""Lockout and rate limits for any login route, before the app checks a password (pure ASGI).

Login routes the library does not own (the host app's own ``POST /login``, or
any path in ``login_paths``) are covered too. For each login attempt, before
the endpoint runs:

1. the user name(s) are read from the body the way FastAPI/Starlette will read
   them, whatever its shape (JSON, form, multipart: :mod:`.login_body`), within
   ``body_read_timeout`` (slower: ``408``);
2. the per-IP rate limit is counted (429 beyond it);
3. one attempt is *reserved* atomically in the shared store for each name and
   the client IP (:meth:`LockoutManager.reserve`): a locked key, or a key whose
   attempts are all taken by guesses still being checked, is refused with 429.
   Reserving before the password check is what makes the limit hold under
   concurrency (issue 12, item 9: checking first and counting after the answer
   let 50 parallel form logins all through);
4. only then the per-account rate limits are counted, first per account and
   address, then per account from all addresses (429 beyond either; the
   reservation is given back). An attempt the lockout refused, or one refused by
   its own address's share, never reaches the all-addresses count: one address
   trickling attempts at an account, locked out or not, cannot spend the budget
   its owner signs in with, while many addresses guessing a few times each
   still meet it (the ``distributed_guessing`` case).

When the app has answered, the reservation is settled from the status: ``401``
/``403`` is a failure (the attempt stays counted and may lock), ``2xx`` a
success, anything else (422, 429, 5xx...) gives the attempt back. An endpoint
that settles the reservation itself (``build_auth_router``'s ``/login`` passes
it to the authenticator, which knows "right password, second factor needed"
from "wrong password") leaves nothing to settle here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import RATE_LIMITED, get_request_context, note_refusal
from pynomaly_security._log import get_logger
from pynomaly_security.auth.lockout import LOCKOUT_REPORTED, LockoutManager, Reservation
from pynomaly_security.auth.login_body import DEFAULT_USERNAME_FIELDS, login_names
from pynomaly_security.auth.route_limits import KeyedLimits
from pynomaly_security.exceptions import StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._asgi import Layer, passes_through
from pynomaly_security.middleware._body import BodyOutcome, read_body, replay_receive
from pynomaly_security.middleware._refusal import (
    BODY_READ_TIMEOUT,
    REQUEST_TOO_LARGE,
    check_body_read_timeout,
    refuse,
)
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.storage.base import FailurePolicy

__all__ = ["LOGIN_LIMITED", "LOGIN_RESERVATION", "LoginLockoutMiddleware"]

log = get_logger(__name__)

LOGIN_RESERVATION = "login_reservation"
"""``RequestContext.extra`` (or ``scope["state"]``) key: this login's :class:`Reservation`."""
LOGIN_LIMITED = "login_rate_counted"
"""``RequestContext.extra`` flag: the login rate limits already counted this attempt."""
_LOGIN_BODY_LIMIT = 64 * 1024


async def _answer_limited(
    scope: Scope, receive: Receive, send: Send, refusal: JSONResponse
) -> None:
    """Send a login rate limit's 429 (or 503, store down) and mark it: skipped by
    the access audit, one ``request_refused`` record per client and window."""
    ctx = get_request_context(scope)
    if ctx is not None:
        ctx.extra[RATE_LIMITED] = True
    reason = "rate_limited" if refusal.status_code == 429 else "rate_limit_unavailable"
    note_refusal(scope, reason, refusal.status_code, repeating=True)
    await refusal(scope, receive, send)


class LoginLockoutMiddleware(Layer):
    """Refuse locked or over-limit logins with 429; reserve and settle each attempt.

    Args:
        app: the ASGI app.
        lockouts: the shared lockout.
        login_paths: exact paths whose ``POST`` is a login attempt.
        resolver: client IP resolver when no tracking middleware ran first.
        username_fields: body fields a user name may be in.
        ip_limits: login attempts per client IP (``limits`` notation); none: unlimited.
        account_limits: login attempts per account name, from all addresses together.
        account_ip_limits: login attempts per account name from one address: its
            share of ``account_limits`` (set it lower, so that no single address
            can spend an account's whole budget).
        rate_limit_policy: when the store fails while rate limiting: pass or 503.
        body_read_timeout: seconds the login body may take to arrive; slower gets
            ``408 body_read_timeout`` (a login body trickled byte by byte would
            otherwise hold its request, and its slot, forever).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lockouts: LockoutManager,
        login_paths: Iterable[str] = ("/login",),
        resolver: ClientIPResolver | None = None,
        username_fields: Sequence[str] = DEFAULT_USERNAME_FIELDS,
        ip_limits: Sequence[str] = (),
        account_limits: Sequence[str] = (),
        account_ip_limits: Sequence[str] = (),
        rate_limit_policy: FailurePolicy = "fail_open",
        body_read_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.lockouts = lockouts
        self.login_paths = frozenset(login_paths)
        self._resolver = resolver or ClientIPResolver()
        self._fields = tuple(username_fields)
        self._ip_limits = KeyedLimits(ip_limits, lockouts.store) if ip_limits else None
        self._account_limits = (
            KeyedLimits(account_limits, lockouts.store) if account_limits else None
        )
        self._account_ip_limits = (
            KeyedLimits(account_ip_limits, lockouts.store) if account_ip_limits else None
        )
        self._rate_policy = rate_limit_policy
        self._body_timeout = check_body_read_timeout(body_read_timeout)

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self.login_paths
        ):
            return self.call_app(scope, receive, send)  # not a login: no frame of this layer
        return self._login(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_request_context(scope)
        ip = ctx.client_ip if ctx is not None else self._resolver.resolve(scope)
        buffered = await read_body(receive, _LOGIN_BODY_LIMIT, self._body_timeout)
        if buffered.outcome is BodyOutcome.TOO_LARGE:
            await refuse(scope, receive, send, 413, REQUEST_TOO_LARGE)
            return
        if buffered.outcome is BodyOutcome.TIMED_OUT:
            # Nothing reserved yet: a slow body costs the account and the address nothing.
            await refuse(scope, receive, send, 408, BODY_READ_TIMEOUT)
            return
        if buffered.outcome is BodyOutcome.DISCONNECTED:
            return
        names = await login_names(scope, buffered.body, self._fields)
        if ctx is not None and names and ctx.login_username is None:
            ctx.login_username = names[0]
        receive = replay_receive(buffered.body, receive)
        refusal = await self._limited(self._ip_limited(scope["path"], ip))
        if refusal is not None:
            await _answer_limited(scope, receive, send, refusal)
            return
        reservation = await self.lockouts.reserve(names, ip)
        if reservation.status.locked:
            if ctx is not None:
                ctx.extra["login_locked"] = True
            status = reservation.status
            code, detail = (
                (503, "login temporarily unavailable")
                if status.unavailable
                else (429, "too_many_login_attempts")
            )
            retry = status.retry_after if not status.unavailable else 5
            note_refusal(
                scope,
                "login_unavailable" if status.unavailable else "too_many_login_attempts",
                code,
                repeating=True,
            )
            response = JSONResponse(
                {"error": detail, "retry_after": retry}, code, headers={"Retry-After": str(retry)}
            )
            await response(scope, receive, send)
            return
        # Counted only for an attempt that will be checked: counted before the lockout,
        # a locked-out address's attempts spent the account's budget and kept its
        # owner out for as long as it kept trying.
        refusal = await self._limited(self._account_limited(names, ip))
        if refusal is not None:
            await self.lockouts.settle(reservation, "void")
            await _answer_limited(scope, receive, send, refusal)
            return
        state = scope.setdefault("state", {})
        state[LOGIN_RESERVATION] = reservation
        if ctx is not None:
            ctx.extra[LOGIN_RESERVATION] = reservation
            ctx.extra[LOGIN_LIMITED] = True
        answered = 0

        async def send_status(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            reported = ctx is not None and bool(ctx.extra.get(LOCKOUT_REPORTED))
            await self._settle(reservation, answered, reported)

    async def _settle(self, reservation: Reservation, answered: int, reported: bool) -> None:
        if reservation.settled:
            return
        if reported:
            # The endpoint counted the attempt itself (report_auth_failure): do not
            # count it twice.
            await self.lockouts.settle(reservation, "void")
        elif answered in (401, 403):
            await self.lockouts.settle(reservation, "failure")
        elif 200 <= answered < 300:
            await self.lockouts.settle(reservation, "success")
        else:
            await self.lockouts.settle(reservation, "void")

    async def _ip_limited(self, path: str, ip: str | None) -> dict[str, str] | None:
        if self._ip_limits is None:
            return None
        return await self._ip_limits.hit("login:" + path, "ip:" + (ip or "unknown"))

    async def _account_limited(
        self, names: tuple[str, ...], ip: str | None
    ) -> dict[str, str] | None:
        # Per account across every login path: one account, one budget. The address's
        # share first: an attempt refused there is not charged to the account's total.
        for name in names:
            account = "account:" + LockoutManager.account_key(name)
            if self._account_ip_limits is not None:
                headers = await self._account_ip_limits.hit(
                    "login-account-ip", account + "|ip:" + (ip or "unknown")
                )
                if headers is not None:
                    return headers
            if self._account_limits is not None:
                headers = await self._account_limits.hit("login-account", account)
                if headers is not None:
                    return headers
        return None

    async def _limited(self, check: Awaitable[dict[str, str] | None]) -> JSONResponse | None:
        """The 429 (or 503) when ``check`` finds a login limit passed."""
        try:
            headers = await check
        except StorageError as exc:
            log.warning("login_rate_limit_store_unavailable", error=safe_text(str(exc)))
            if self._rate_policy == "fail_closed":
                return JSONResponse(
                    {"detail": "rate limiting unavailable"}, 503, headers={"Retry-After": "1"}
                )
            return None
        if headers is None:
            return None
        return JSONResponse({"detail": "rate limit exceeded"}, 429, headers=headers)
