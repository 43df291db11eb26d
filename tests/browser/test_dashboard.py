"""The dashboard page in headless Chromium against a real uvicorn server.

Chromium runs offline (every host name but 127.0.0.1 fails to resolve): the page
needs no CDN. It loads with zero console errors and zero CSP violations (the page's
own strict policy: no inline script or style, Trusted Types), shows the posture,
the charts and the latest alerts; acknowledging an alert in the page acknowledges
it on the server; it works at phone width and in dark mode. A screenshot is saved
under pytest's tmp dir and read back with tesseract for its main headings.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security import (
    SecurityAlert,
    SecuritySettings,
    ThreatLevel,
    add_security_endpoints,
    setup_security_middleware,
)
from tests.conftest import require_program

from ._cdp import Page, open_page
from ._local import chromium_devtools, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "dashboard-admin-key-0123456789abcdef"
HEADINGS = ("Security dashboard", "Posture", "Last 24 hours", "Latest alerts", "Top blocked routes")


def _app(tmp_path: Path) -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.post("/raise")
    async def raise_alert() -> dict[str, str]:
        # The app raising an alert of its own (a documented use of the monitor).
        alert = SecurityAlert("payment_fraud", ThreatLevel.HIGH, "card testing from one client")
        await stack.security_monitor.raise_alert(alert)
        return {"alert_id": alert.alert_id}

    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    stack = setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)
    return app


@pytest.fixture(scope="module")
def offline_chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Headless Chromium that can reach 127.0.0.1 only; its DevTools port."""
    chromium = require_program("chromium")
    profile = tmp_path_factory.mktemp("chromium-dashboard")
    with chromium_devtools(chromium, profile) as port:
        yield port


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    with serve(_app(tmp_path)) as base:
        yield base


def _ocr(png: Path) -> str:
    """The screenshot's text as tesseract reads it, lower case, single-spaced."""
    tesseract = require_program("tesseract")
    done = subprocess.run(
        [tesseract, str(png), "stdout"], capture_output=True, text=True, check=True
    )
    return " ".join(done.stdout.lower().split())


def _console_errors(page: Page) -> list[str]:
    errors = []
    for event in page.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args", []))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('text')} {entry.get('url', '')}")
    return errors


async def _sign_in(page: Page, base: str) -> None:
    await page.goto(base + "/api/security/dashboard")
    assert await page.wait_for("!document.getElementById('login').hidden")
    await page.evaluate(
        f"document.getElementById('key').value = {json.dumps(KEY)};"
        "document.getElementById('login-form').requestSubmit(); true"
    )
    assert await page.wait_for("document.body.dataset.loaded === '1'"), page.log_lines()


@pytest.mark.anyio
async def test_dashboard_loads_clean_and_acknowledges_an_alert(
    server: str, offline_chromium: int, tmp_path: Path
) -> None:
    """The page signs in with the key, shows tiles, charts, the alert and the blocked
    route; no console error, no CSP violation; Acknowledge acknowledges on the server;
    the screenshot shows the main headings."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        blocked = await http.get("/search", params={"q": "1' UNION SELECT password FROM users--"})
        assert blocked.status_code == 403
        alert_id = (await http.post("/raise")).json()["alert_id"]
        page_html = await http.get("/api/security/dashboard")
        assert "script-src 'self'" in page_html.headers["content-security-policy"]
        # No inline script, no inline handler, no style attribute: nothing to hash.
        assert re.search(r"<script(?![^>]*\bsrc=)|\son[a-z]+=|\sstyle=", page_html.text) is None

        async with open_page(offline_chromium) as page:
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=1500,
                deviceScaleFactor=2,  # sharp enough for tesseract
                mobile=False,
            )
            await _sign_in(page, server)
            tiles = await page.evaluate(
                "[...document.querySelectorAll('[data-tile]')].map(t => t.dataset.tile)"
            )
            assert tiles == [
                "Active alerts",
                "Open incidents",
                "Blocked requests",
                "Lockouts",
                "Audit integrity",
                "Compliance score",
                "Vulnerable dependencies",
            ]
            compliance = await page.evaluate(
                "document.querySelector('[data-tile=\"Compliance score\"] .value').textContent"
            )
            assert compliance == "not configured"
            assert (
                await page.evaluate("document.querySelectorAll('figure.chart svg path').length") > 0
            )
            assert "/search" in await page.evaluate(
                "document.getElementById('top-routes').textContent"
            )
            assert "sqli" in await page.evaluate(
                "document.getElementById('top-families').textContent"
            )
            assert await page.evaluate(f"!!document.querySelector('[data-alert=\"{alert_id}\"]')")

            shot = await page.call("Page.captureScreenshot", format="png")
            artifact = tmp_path / "dashboard.png"
            artifact.write_bytes(base64.b64decode(shot["data"]))

            await page.evaluate(
                f"document.querySelector('[data-ack=\"{alert_id}\"]').click(); true",
                user_gesture=True,
            )
            assert await page.wait_for(f"!document.querySelector('[data-alert=\"{alert_id}\"]')")
            assert await page.csp_violations() == []
            assert _console_errors(page) == [], page.log_lines()

        active = (await http.get("/api/security/alerts", headers={"X-API-Key": KEY})).json()
        assert alert_id not in {a["alert_id"] for a in active["alerts"]}

    words = _ocr(artifact)
    for heading in HEADINGS:
        assert heading.lower() in words, (heading, words[:2000])


@pytest.mark.anyio
async def test_dashboard_fits_a_phone_in_dark_mode(server: str, offline_chromium: int) -> None:
    """At 390 px wide nothing overflows sideways, and dark mode changes the colours; the
    key is asked once per tab (kept in sessionStorage across a reload)."""
    async with open_page(offline_chromium) as page:
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        await page.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": "dark"}],
        )
        await _sign_in(page, server)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 20, 24)"
        await page.goto(server + "/api/security/dashboard")
        assert await page.wait_for("document.body.dataset.loaded === '1'")  # no key asked
        await page.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": "light"}],
        )
        light = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert light == "rgb(246, 247, 249)"
        assert await page.csp_violations() == []
        assert _console_errors(page) == [], page.log_lines()
