"""The headers the docs pages get, checked without a browser (the browser test in
this folder shows why they are needed; this one runs everywhere)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse

from pynomaly_security.middleware.headers import DEFAULT_JSON_CSP, SecurityHeadersMiddleware

MakeClient = Callable[[FastAPI], httpx.AsyncClient]


def _app(**options: object) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items() -> list[int]:
        return [1]

    app.add_middleware(SecurityHeadersMiddleware, **options)  # type: ignore[arg-type]
    return app


@pytest.mark.anyio
async def test_docs_pages_keep_their_oauth2_popup(make_client: MakeClient) -> None:
    """/docs and /redoc send COOP same-origin-allow-popups, the OAuth2 redirect page none,
    everything else same-origin."""
    async with make_client(_app()) as client:
        for path in ("/docs", "/redoc"):
            page = await client.get(path)
            assert page.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
            assert "https://cdn.jsdelivr.net" in page.headers["content-security-policy"]
        redirect = await client.get("/docs/oauth2-redirect")
        assert "cross-origin-opener-policy" not in redirect.headers
        assert "'sha256-" in redirect.headers["content-security-policy"]
        assert redirect.headers["x-frame-options"] == "DENY"
        api = await client.get("/items")
        assert "cross-origin-opener-policy" not in api.headers  # JSON: no document headers
        assert api.headers["content-security-policy"] == DEFAULT_JSON_CSP


@pytest.mark.anyio
async def test_docs_coop_applies_without_csp(make_client: MakeClient) -> None:
    """With the CSP switched off the docs still get the popup-friendly COOP, unbuffered."""
    async with make_client(_app(csp=False)) as client:
        docs = await client.get("/docs")
        assert docs.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
        assert "content-security-policy" not in docs.headers
        redirect = await client.get("/docs/oauth2-redirect")
        assert "cross-origin-opener-policy" not in redirect.headers


@pytest.mark.anyio
async def test_explicit_docs_paths_and_an_apps_own_coop(make_client: MakeClient) -> None:
    """docs_paths narrows the docs to the listed paths; a COOP the app set is kept."""
    app = _app(docs_paths=["/docs"])

    @app.get("/own")
    async def own() -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Cross-Origin-Opener-Policy": "unsafe-none"})

    async with make_client(app) as client:
        assert (await client.get("/redoc")).headers["cross-origin-opener-policy"] == "same-origin"
        assert (await client.get("/docs")).headers[
            "cross-origin-opener-policy"
        ] == "same-origin-allow-popups"
        own_coop = (await client.get("/own")).headers.get_list("cross-origin-opener-policy")
        assert own_coop == ["unsafe-none"]
