"""An exception the app does not handle is answered 500 by Starlette's
ServerErrorMiddleware, outside every middleware the app adds; with the stack
installed that 500 carries the security headers and the request id too,
whichever way the app answers it (its own handler, async or sync, the debug
page, or the default), and the exception still reaches the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.middleware.headers import (
    DEFAULT_API_CSP,
    DEFAULT_HTML_CSP,
    DEFAULT_JSON_CSP,
)


def _app(handler: Callable[..., Any] | None = None, *, debug: bool = False) -> FastAPI:
    app = FastAPI(debug=debug)
    setup_security_middleware(
        app,
        settings=SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            development_mode=True,
            enable_audit_logging=False,
        ),
    )
    if handler is not None:
        app.add_exception_handler(Exception, handler)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the app failed")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


calls: list[str] = []


async def json_handler(request: Request, exc: Exception) -> Response:
    calls.append("async")
    return JSONResponse({"detail": "internal error", "kind": type(exc).__name__}, 500)


def text_handler(request: Request, exc: Exception) -> Response:
    calls.append("sync")
    return PlainTextResponse("our own 500 page", 500)


@pytest.mark.parametrize(
    ("handler", "debug", "body", "csp"),
    [
        pytest.param(None, False, "Internal Server Error", DEFAULT_API_CSP, id="default"),
        pytest.param(
            json_handler,
            False,
            '{"detail":"internal error","kind":"RuntimeError"}',
            DEFAULT_JSON_CSP,
            id="app-async-handler",
        ),
        pytest.param(
            text_handler, False, "our own 500 page", DEFAULT_API_CSP, id="app-sync-handler"
        ),
        pytest.param(None, True, None, DEFAULT_HTML_CSP, id="debug-page"),
    ],
)
@pytest.mark.anyio
async def test_a_500_carries_the_security_headers(
    handler: Callable[..., Any] | None, debug: bool, body: str | None, csp: str
) -> None:
    """The 500 keeps the app's answer (its handler called once) and gets the CSP
    for its content type, the other security headers and X-Request-ID."""
    calls.clear()
    app = _app(handler, debug=debug)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # The debug page is HTML for a browser (Accept: text/html), else plain text.
        failed = await client.get("/boom", headers={"accept": "text/html"} if debug else {})
        fine = await client.get("/ok")
    assert failed.status_code == 500
    if body is not None:
        assert failed.text == body
    else:
        assert "RuntimeError" in failed.text  # Starlette's traceback page
    assert failed.headers["content-security-policy"] == csp
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert failed.headers["x-frame-options"] == "DENY"
    assert failed.headers["cross-origin-resource-policy"] == "same-origin"
    assert len(failed.headers["x-request-id"]) == 32
    assert failed.headers["x-request-id"] != fine.headers["x-request-id"]
    assert len(calls) == (1 if handler is not None else 0)
    # Headers the app did not set are added once, not twice.
    assert len(failed.headers.get_list("x-content-type-options")) == 1


@pytest.mark.anyio
async def test_the_exception_still_reaches_the_server() -> None:
    """The 500 is sent and the exception re-raised, so the server logs it."""
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(RuntimeError, match="the app failed"):
            await client.get("/boom")
