"""FastAPI's /docs and /redoc render in headless Chromium under our default CSP.

A real uvicorn serves a FastAPI app with the full default stack
(``setup_security_middleware``); Chromium loads the docs pages with the CDN
hosts mapped to a local fake CDN serving the real Swagger UI and ReDoc
packages. Violations are collected from four channels (the page's
``securitypolicyviolation`` events, DevTools issues, blocked requests and the
console), so a policy that blocks anything the docs need fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.middleware.headers import DEFAULT_JSON_CSP, SecurityHeadersMiddleware

from ._cdp import open_page
from ._fake_cdn import IDP_HOST, FakeCDN
from ._local import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Item(BaseModel):
    name: str
    price: float


def _routes(app: FastAPI) -> None:
    @app.get("/items/{item_id}", summary="Read one item")
    async def read_item(item_id: int) -> Item:
        return Item(name=f"item {item_id}", price=1.0)

    @app.post("/items", summary="Create an item", status_code=201)
    async def create_item(item: Item) -> Item:
        return item


def _secured_app(tmp_path: Path) -> FastAPI:
    app = FastAPI(title="docs under CSP")
    _routes(app)
    settings = SecuritySettings(
        admin_api_key="browser-test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    setup_security_middleware(app, settings=settings)
    return app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[str]:
    with serve(_secured_app(tmp_path)) as url:
        yield url


@pytest.mark.anyio
async def test_swagger_ui_and_redoc_render_without_csp_violations(
    secured_server: str, devtools_port: int, fake_cdn: FakeCDN
) -> None:
    """Swagger UI lists the operations and ReDoc renders the API, with no CSP violation."""
    async with httpx.AsyncClient(base_url=secured_server) as http:
        docs = await http.get("/docs")
        redirect = await http.get("/docs/oauth2-redirect")
        api = await http.get("/items/1")
    assert "'sha256-" in docs.headers["content-security-policy"]
    assert "'sha256-" in redirect.headers["content-security-policy"]
    assert api.headers["content-security-policy"] == DEFAULT_JSON_CSP
    assert docs.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    assert "cross-origin-opener-policy" not in redirect.headers
    assert "cross-origin-opener-policy" not in api.headers  # JSON: no document headers

    async with open_page(devtools_port) as page:
        await page.goto(f"{secured_server}/docs")
        operations = await page.wait_for("document.querySelectorAll('.opblock').length >= 2")
        violations = await page.csp_violations()
        assert operations, page.log_lines()
        assert violations == [], violations
        summaries = await page.evaluate(
            "[...document.querySelectorAll('.opblock-summary-description')].map(e => e.textContent)"
        )
        assert {"Read one item", "Create an item"} <= set(summaries)
        assert fake_cdn.served("cdn.jsdelivr.net", "/swagger-ui-bundle.js")

        await page.goto(f"{secured_server}/redoc")
        rendered = await page.wait_for(
            "!!document.querySelector('.api-content') && "
            "document.body.innerText.includes('Create an item')"
        )
        violations = await page.csp_violations()
        assert rendered, page.log_lines()
        assert violations == [], violations
        assert fake_cdn.served("cdn.jsdelivr.net", "/redoc.standalone.js")

        # Swagger UI's OAuth2 redirect page is one inline script; opened without an
        # opener it fails in JavaScript, but its script must not be blocked.
        await page.goto(f"{secured_server}/docs/oauth2-redirect")
        assert await page.csp_violations() == []


# What Swagger UI sets up before opening the authorization popup (its oauth2 plugin),
# reduced to what the redirect page reads; the callback records the code it got.
_START_OAUTH2 = """
window.__oauth = null;
window.swaggerUIRedirectOauth2 = {
  state: 'st4te-123',
  redirectUrl: location.origin + '/docs/oauth2-redirect',
  auth: {name: 'oauth', code: null,
         schema: {get: (k) => k === 'flow' ? 'authorizationCode' : null}},
  callback: (r) => { window.__oauth = 'code:' + r.auth.code; },
  errCb: (e) => { window.__oauth = 'error:' + e.message; },
};
window.open('https://%s/authorize?response_type=code&state=st4te-123&redirect_uri='
  + encodeURIComponent(location.origin + '/docs/oauth2-redirect'), 'oauth2');
true
"""


@pytest.mark.anyio
async def test_swagger_oauth2_popup_reaches_the_docs_page(
    secured_server: str, devtools_port: int, fake_cdn: FakeCDN
) -> None:
    """Swagger UI's OAuth2 flow works: the popup goes to a cross-origin authorization
    server and back to /docs/oauth2-redirect, which hands the code to its opener.
    A Cross-Origin-Opener-Policy of same-origin on the docs pages would sever it."""
    async with open_page(devtools_port) as page:
        await page.goto(f"{secured_server}/docs")
        await page.wait_for("document.querySelectorAll('.opblock').length >= 2")
        await page.evaluate(_START_OAUTH2 % IDP_HOST, user_gesture=True)
        result = await page.wait_for("window.__oauth", timeout=15)
        assert fake_cdn.served(IDP_HOST, "/authorize")
        assert result == "code:fake-code", page.log_lines()
        assert await page.csp_violations() == []


@pytest.mark.anyio
async def test_a_policy_that_blocks_the_docs_is_detected(
    devtools_port: int, fake_cdn: FakeCDN
) -> None:
    """Control: with the plain HTML policy on /docs the CDN script is blocked and reported."""
    app = FastAPI()
    _routes(app)
    app.add_middleware(SecurityHeadersMiddleware, hsts=False, docs_paths=())
    with serve(app) as url:
        async with open_page(devtools_port) as page:
            await page.goto(f"{url}/docs")
            violations = await page.wait_for("window.__cspViolations.length > 0", timeout=10)
            assert violations
            assert await page.csp_violations()
            assert await page.evaluate("document.querySelectorAll('.opblock').length") == 0


def _self_hosted_app(tmp_path: Path, assets: dict[str, Path], *, name_the_paths: bool) -> FastAPI:
    """FastAPI's recipe for self-hosted docs ("Custom Docs UI Static Assets"): the
    built-in pages off, Swagger UI and ReDoc served from the app's own /static at
    paths of its choosing; and a FastAPI app mounted at /v1 with its default docs."""
    app = FastAPI(title="self-hosted docs", docs_url=None, redoc_url=None)
    _routes(app)
    app.mount("/static/swagger", StaticFiles(directory=assets["swagger-ui-dist"]))
    app.mount("/static/redoc", StaticFiles(directory=assets["redoc"] / "bundles"))

    @app.get("/api-docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title="self-hosted Swagger UI",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    @app.get(str(app.swagger_ui_oauth2_redirect_url), include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/api-redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=str(app.openapi_url),
            title="self-hosted ReDoc",
            redoc_js_url="/static/redoc/redoc.standalone.js",
            with_google_fonts=False,
        )

    v1 = FastAPI(title="mounted v1")
    _routes(v1)
    app.mount("/v1", v1)
    settings = SecuritySettings(
        admin_api_key="browser-test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        csp_docs_paths=["/api-docs", "/api-redoc"] if name_the_paths else [],
    )
    setup_security_middleware(app, settings=settings)
    return app


_SWAGGER_READY = "document.querySelectorAll('.opblock').length >= 2"
_REDOC_READY = (
    "!!document.querySelector('.api-content') && "
    "document.body.innerText.includes('Create an item')"
)


@pytest.mark.anyio
async def test_self_hosted_and_mounted_docs_render_without_csp_violations(
    devtools_port: int, docs_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 12, item 15: self-hosted Swagger UI and ReDoc (local assets, other paths,
    named in CSP_DOCS_PATHS) and a mounted app's /v1/docs render under the default
    stack, their inline scripts allowed by hashes computed from each response."""
    with serve(_self_hosted_app(tmp_path, docs_assets, name_the_paths=True)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for path in ("/api-docs", "/api-redoc", "/docs/oauth2-redirect", "/v1/docs"):
                page = await http.get(path)
                assert page.status_code == 200, path
                policy = page.headers["content-security-policy"]
                assert "worker-src 'self' blob:" in policy, path  # the docs policy
                assert ("'sha256-" in policy) == (path != "/api-redoc"), path  # one per script
            assert "cdn.jsdelivr" not in (await http.get("/api-docs")).text
        async with open_page(devtools_port) as page:
            for path, ready in (
                ("/api-docs", _SWAGGER_READY),
                ("/api-redoc", _REDOC_READY),
                ("/v1/docs", _SWAGGER_READY),
            ):
                await page.goto(f"{url}{path}")
                rendered = await page.wait_for(ready)
                violations = await page.csp_violations()
                assert rendered, (path, page.log_lines())
                assert violations == [], (path, violations)
            await page.goto(f"{url}/docs/oauth2-redirect")
            assert await page.csp_violations() == []


@pytest.mark.anyio
async def test_unnamed_self_hosted_docs_stay_under_the_html_policy(
    devtools_port: int, docs_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Control: a page at a path nobody named as docs keeps the HTML policy, so its
    inline script is blocked and reported (the page stays blank): only the app's own
    docs pages get hashes computed from the response."""
    with serve(_self_hosted_app(tmp_path, docs_assets, name_the_paths=False)) as url:
        async with open_page(devtools_port) as page:
            await page.goto(f"{url}/api-docs")
            violations = await page.wait_for("window.__cspViolations.length > 0", timeout=10)
            assert violations
            assert await page.evaluate("document.querySelectorAll('.opblock').length") == 0
