"""Security headers on every response, with a CSP chosen per response."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.middleware.headers import (
    DEFAULT_API_CSP,
    DEFAULT_HTML_CSP,
    DEFAULT_JSON_CSP,
    SecurityHeadersMiddleware,
)
from pynomaly_security.network.client_ip import ClientIPResolver


def _app(**options: object) -> Starlette:
    async def data(request: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<h1>hi</h1>")

    async def own_csp(request: object) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Content-Security-Policy": "default-src 'self'"})

    async def stream(request: object) -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk{i}\n".encode()

        return StreamingResponse(gen(), media_type="text/event-stream")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return Starlette(
        routes=[
            Route("/data", data),
            Route("/page", page),
            Route("/own", own_csp),
            Route("/stream", stream),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(SecurityHeadersMiddleware, **options)],  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_every_response_gets_the_headers(make_client) -> None:  # type: ignore[no-untyped-def]
    """JSON, HTML and 404 answers all carry the security headers; no legacy XSS auditor."""
    async with make_client(_app(), base_url="https://testserver") as client:
        for path in ("/data", "/page", "/missing"):
            response = await client.get(path)
            h = response.headers
            assert h["x-content-type-options"] == "nosniff"
            assert h["x-frame-options"] == "DENY"
            if h["content-type"].startswith("application/json"):
                # Document-only headers are not sent on JSON (OWASP REST cheat sheet).
                for name in ("referrer-policy", "permissions-policy", "cross-origin-opener-policy"):
                    assert name not in h
            else:
                assert h["referrer-policy"] == "no-referrer"
                assert "camera=()" in h["permissions-policy"]
                assert h["cross-origin-opener-policy"] == "same-origin"
            assert h["cross-origin-resource-policy"] == "same-origin"
            assert h["strict-transport-security"].startswith("max-age=31536000")
            # Legacy headers are not sent: the XSS auditor is gone from every browser
            # (and `1` made pages exploitable); Flash/Acrobat cross-domain policies too.
            assert "x-xss-protection" not in h
            assert "x-permitted-cross-domain-policies" not in h
            assert "content-security-policy" in h


@pytest.mark.anyio
async def test_csp_depends_on_the_response(make_client) -> None:  # type: ignore[no-untyped-def]
    """JSON gets default-src 'none'; HTML a same-origin policy; the app's own CSP is kept."""
    async with make_client(_app()) as client:
        assert (await client.get("/data")).headers["content-security-policy"] == DEFAULT_JSON_CSP
        # Other non-HTML answers also refuse forms and <base> (XML/SVG can be documents).
        stream = await client.get("/stream")
        assert stream.headers["content-security-policy"] == DEFAULT_API_CSP
        assert (
            "default-src 'self'" in (await client.get("/page")).headers["content-security-policy"]
        )
        own = await client.get("/own")
        assert own.headers.get_list("content-security-policy") == ["default-src 'self'"]


@pytest.mark.anyio
async def test_hsts_only_over_https(make_client) -> None:  # type: ignore[no-untyped-def]
    """RFC 6797 §7.2: no HSTS over plain HTTP; a trusted proxy's forwarded proto counts."""
    async with make_client(_app()) as client:  # http://
        h = (await client.get("/data")).headers
        assert "strict-transport-security" not in h
        assert h["x-frame-options"] == "DENY"
        # A client's own X-Forwarded-Proto is not believed without a trusted proxy.
        h = (await client.get("/data", headers={"X-Forwarded-Proto": "https"})).headers
        assert "strict-transport-security" not in h
    behind = _app(resolver=ClientIPResolver(["203.0.113.0/24"]))  # the test client's peer
    async with make_client(behind) as client:
        for header in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "for=1.2.3.4;proto=https"}):
            h = (await client.get("/data", headers=header)).headers
            assert h["strict-transport-security"].startswith("max-age="), header
        h = (await client.get("/data", headers={"X-Forwarded-Proto": "http"})).headers
        assert "strict-transport-security" not in h
    elsewhere = _app(resolver=ClientIPResolver(["10.0.0.0/8"]))  # the peer is not a proxy
    async with make_client(elsewhere) as client:
        h = (await client.get("/data", headers={"X-Forwarded-Proto": "https"})).headers
        assert "strict-transport-security" not in h


@pytest.mark.anyio
async def test_switches(make_client) -> None:  # type: ignore[no-untyped-def]
    """HSTS and CSP can be switched off."""
    async with make_client(_app(hsts=False, csp=False), base_url="https://testserver") as client:
        h = (await client.get("/data")).headers
        assert "strict-transport-security" not in h and "content-security-policy" not in h
        assert h["x-frame-options"] == "DENY"


@pytest.mark.anyio
async def test_streaming_passes_through(make_client) -> None:  # type: ignore[no-untyped-def]
    """A streaming response arrives whole and in order, with the headers."""
    async with make_client(_app()) as client:
        response = await client.get("/stream")
        assert response.text == "chunk0\nchunk1\nchunk2\n"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_websocket_passes_through() -> None:
    """Websockets are untouched by the headers middleware."""
    with TestClient(_app()) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"


@pytest.mark.anyio
async def test_fastapi_docs_get_a_hash_based_policy(make_client) -> None:  # type: ignore[no-untyped-def]
    """/docs allows the CDN and exactly its inline script by hash, never 'unsafe-inline' scripts."""
    app = FastAPI()
    app.add_middleware(SecurityHeadersMiddleware)
    async with make_client(app) as client:
        docs = await client.get("/docs")
        csp = docs.headers["content-security-policy"]
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "https://cdn.jsdelivr.net" in script_src
        assert "'sha256-" in script_src and "unsafe-inline" not in script_src
        assert "SwaggerUIBundle" in docs.text
        api = await client.get("/openapi.json")
        assert api.headers["content-security-policy"] == DEFAULT_JSON_CSP


def _script_src(policy: str) -> str:
    return next(d for d in policy.split(";") if d.strip().startswith("script-src"))


@pytest.mark.anyio
async def test_docs_pages_are_found_wherever_they_are_mounted(make_client) -> None:  # type: ignore[no-untyped-def]
    """Issue 12, item 15: a FastAPI app mounted in the app serves its docs with the
    hashed policy (/v1/docs, /v1/docs/oauth2-redirect, nested /v1/v2/redoc) and so
    do pages named in extra_docs_paths; a path under a mount that is not a docs
    page keeps the HTML policy."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.responses import HTMLResponse as FastHTML

    v2 = FastAPI(docs_url=None)
    v1 = FastAPI()
    v1.mount("/v2", v2)
    app = FastAPI(docs_url=None, redoc_url=None)
    app.mount("/v1", v1)

    @app.get("/api-docs")
    async def own_docs() -> FastHTML:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="t", swagger_js_url="/static/s.js"
        )

    @app.get("/page")
    async def page() -> FastHTML:
        return FastHTML("<script>alert(1)</script>")

    app.add_middleware(SecurityHeadersMiddleware, extra_docs_paths=["/api-docs", "/gone-docs"])
    async with make_client(app) as client:
        for path in ("/v1/docs", "/v1/docs/oauth2-redirect", "/api-docs"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "'sha256-" in _script_src(response.headers["content-security-policy"]), path
        nested = await client.get("/v1/v2/redoc")
        assert "worker-src 'self' blob:" in nested.headers["content-security-policy"]
        assert (await client.get("/page")).headers["content-security-policy"] == DEFAULT_HTML_CSP
        assert (await client.get("/v1/redoc")).status_code == 200
        assert (await client.get("/v1/v2/docs")).status_code == 404  # docs_url=None there
        missing = await client.get("/gone-docs")  # named, but not a page: JSON headers
        assert missing.status_code == 404
        assert missing.headers["content-security-policy"] == DEFAULT_JSON_CSP


@pytest.mark.anyio
async def test_docs_asset_origins_extend_the_docs_policy_only(make_client) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()
    app.add_middleware(
        SecurityHeadersMiddleware, docs_asset_origins=["https://static.example.com"]
    )
    async with make_client(app) as client:
        docs = (await client.get("/docs")).headers["content-security-policy"]
        api = (await client.get("/openapi.json")).headers["content-security-policy"]
    directives = {d.split()[0]: d for d in docs.split("; ")}
    for name in ("script-src", "style-src", "img-src", "font-src"):
        assert "https://static.example.com" in directives[name], name
    assert "https://static.example.com" not in directives["connect-src"]
    assert "static.example.com" not in api


@pytest.mark.parametrize(
    "origin", ["static.example.com", "https://x.example.com; script-src *", "'unsafe-inline'", "*"]
)
def test_a_docs_asset_origin_must_be_an_origin(origin: str) -> None:
    """An origin that would inject a directive or a keyword into the policy is refused."""
    with pytest.raises(ConfigurationError, match="not an origin"):
        SecurityHeadersMiddleware(FastAPI(), docs_asset_origins=[origin])


@pytest.mark.anyio
async def test_header_names_are_read_whatever_the_case_and_repeats() -> None:
    """An app that sends non-lowercase names (against the ASGI spec) keeps its own
    X-Frame-Options and gets the CSP of its Content-Type, on every repeat of the same
    response and interleaved with lowercase ones (the layer remembers plain sets of names)."""
    answers = [
        [(b"content-type", b"application/json")],
        [(b"Content-Type", b"text/html"), (b"X-Frame-Options", b"SAMEORIGIN")],
        [(b"content-type", b"text/html"), (b"x-frame-options", b"SAMEORIGIN")],
    ]

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        headers = answers[int(str(scope["path"])[1:])]
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"x"})  # type: ignore[operator]

    middleware = SecurityHeadersMiddleware(app)  # type: ignore[arg-type]
    for path in ("/0", "/1", "/2", "/0", "/1", "/2", "/0"):
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)  # noqa: B023

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "path": path, "headers": [], "scheme": "http"}
        await middleware(scope, receive, send)  # type: ignore[arg-type]
        headers = [(bytes(n).lower(), bytes(v)) for n, v in sent[0]["headers"]]  # type: ignore[attr-defined]
        frames = [v for n, v in headers if n == b"x-frame-options"]
        csp = [v for n, v in headers if n == b"content-security-policy"]
        if path == "/0":
            assert frames == [b"DENY"] and csp == [DEFAULT_JSON_CSP.encode()]
        else:
            assert frames == [b"SAMEORIGIN"] and csp == [DEFAULT_HTML_CSP.encode()]
