"""Lockout for any login route, seen from status codes (pure ASGI).

Login routes the library does not own (the host app's own ``POST /login``, or
any path in ``login_paths``) are covered too: a locked user/IP gets ``429``
before the endpoint runs, and afterwards a ``401``/``403`` answer counts as a
failure and a ``2xx`` as a success in the shared :class:`LockoutManager`.

It runs inside the tracking middleware, which has already read the user name
from the (bounded) body into the request context; an endpoint that reports
to the lockout itself (``build_auth_router``'s ``/login``) sets
``LOCKOUT_REPORTED`` so the attempt is not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import get_request_context
from pynomaly_security.auth.lockout import LOCKOUT_REPORTED, LockoutManager
from pynomaly_security.network.client_ip import ClientIPResolver

__all__ = ["LoginLockoutMiddleware"]


class LoginLockoutMiddleware:
    """Refuse locked logins with 429 and count login outcomes.

    Args:
        app: the ASGI app.
        lockouts: the shared lockout.
        login_paths: exact paths whose ``POST`` is a login attempt.
        resolver: client IP resolver when no tracking middleware ran first.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lockouts: LockoutManager,
        login_paths: Iterable[str] = ("/login",),
        resolver: ClientIPResolver | None = None,
    ) -> None:
        self.app = app
        self.login_lockout_bypass = app
        """What a request to any path but the login paths reaches: the app itself
        (an outer layer with the same ``login_paths`` may call it directly)."""
        self.lockouts = lockouts
        self.login_paths = frozenset(login_paths)
        self._resolver = resolver or ClientIPResolver()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self.login_paths
        ):
            await self.app(scope, receive, send)
            return
        ctx = get_request_context(scope)
        username = ctx.login_username if ctx is not None else None
        ip = ctx.client_ip if ctx is not None else self._resolver.resolve(scope)
        status = await self.lockouts.check(username, ip)
        if status.locked:
            if ctx is not None:
                ctx.extra["login_locked"] = True
            code, detail = (
                (503, "login temporarily unavailable")
                if status.unavailable
                else (429, "too_many_login_attempts")
            )
            retry = status.retry_after if not status.unavailable else 5
            response = JSONResponse(
                {"error": detail, "retry_after": retry}, code, headers={"Retry-After": str(retry)}
            )
            await response(scope, receive, send)
            return
        answered = 0

        async def send_status(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        await self.app(scope, receive, send_status)
        if ctx is not None and ctx.extra.get(LOCKOUT_REPORTED):
            return
        if answered in (401, 403):
            await self.lockouts.report_auth_failure(username, ip)
        elif 200 <= answered < 300:
            await self.lockouts.report_auth_success(username, ip)
