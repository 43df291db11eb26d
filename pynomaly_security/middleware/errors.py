"""The security headers on the 500 of an exception the app did not handle.

Starlette and FastAPI answer such an exception from ``ServerErrorMiddleware``,
the outermost layer of every app's middleware stack, outside every middleware
the app adds: its 500 (from the app's own ``500``/``Exception`` handler, the
debug traceback page, or the plain ``Internal Server Error``) goes straight to
the server, past our ``send`` wrapper, so without the security headers (CSP,
``X-Content-Type-Options``...) and without ``X-Request-ID``.

:func:`secure_server_errors` has the app build its stack with
:class:`ServerErrorHeaders` in that place instead: the same middleware, whose
500 gets the headers. The app's handler still decides the answer and is called
once; the exception is still re-raised, so the server logs it. Nothing changes
for a request that does not fail (no extra layer, no ``send`` wrapper).

References:
    Starlette docs, "Exceptions" (``ServerErrorMiddleware`` and 500 handlers);
    OWASP Secure Headers Project (headers on every response, errors included).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from pynomaly_security._context import get_request_context
from pynomaly_security.middleware.headers import HeaderPolicy

__all__ = ["ServerErrorHeaders", "secure_server_errors"]

ErrorHandler = Callable[..., Any]
"""A 500 handler as Starlette takes it: ``(request, exc) -> Response``, sync or async."""


def _is_async(handler: object) -> bool:
    """Whether Starlette awaits ``handler`` (a coroutine function, also behind
    ``functools.partial`` or as an object's ``__call__``) or runs it in a thread."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__  # an instance of a class with an async __call__
    )


class ServerErrorHeaders(ServerErrorMiddleware):
    """``ServerErrorMiddleware`` whose 500 carries the security headers and the
    request id.

    Args:
        app, handler, debug: as for Starlette's ``ServerErrorMiddleware``.
        headers: the security headers policy (the stack's).
    """

    def __init__(
        self,
        app: ASGIApp,
        handler: ErrorHandler | None = None,
        debug: bool = False,
        *,
        headers: HeaderPolicy,
    ) -> None:
        self._headers = headers
        super().__init__(app, handler=self._secured(handler), debug=debug)

    def _secured(self, handler: ErrorHandler | None) -> ErrorHandler | None:
        """The app's 500 handler, its response given the headers; still awaited
        when it is async and run in a thread when it is not."""
        if handler is None:
            return None
        if _is_async(handler):

            async def secured(request: Request, exc: Exception) -> Response:
                response: Response = await handler(request, exc)
                return self.secure(request, response)

            return secured

        async def secured_sync(request: Request, exc: Exception) -> Response:
            response: Response = await run_in_threadpool(handler, request, exc)
            return self.secure(request, response)

        return secured_sync

    def error_response(self, request: Request, exc: Exception) -> Response:
        return self.secure(request, super().error_response(request, exc))

    def debug_response(self, request: Request, exc: Exception) -> Response:
        return self.secure(request, super().debug_response(request, exc))

    def secure(self, request: Request, response: Response) -> Response:
        """``response`` with the security headers (those it does not set itself)
        and the request's ``X-Request-ID``."""
        ctx = get_request_context(request.scope)
        rid = (b"x-request-id", ctx.request_id.encode()) if ctx is not None else None
        policy = self._headers
        message: Message = {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
        policy.apply(message, policy.common_headers, policy.is_secure(request.scope), rid)
        response.raw_headers = message["headers"]
        return response


def secure_server_errors(app: Starlette, headers: HeaderPolicy) -> None:
    """Make ``app`` answer unhandled exceptions with :class:`ServerErrorHeaders`.

    Starlette offers no place outside ``ServerErrorMiddleware`` for a middleware,
    so the app's ``build_middleware_stack`` (called once, on the first request)
    is wrapped: the ``ServerErrorMiddleware`` it builds is replaced by one of ours
    with the same app, handler and debug flag. A stack of another shape is left
    as it is."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_secured() -> ASGIApp:
        stack = build()
        if type(stack) is not ServerErrorMiddleware:
            return stack
        return ServerErrorHeaders(stack.app, stack.handler, stack.debug, headers=headers)

    app.build_middleware_stack = build_secured  # type: ignore[method-assign]
