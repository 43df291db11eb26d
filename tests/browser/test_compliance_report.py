"""The compliance report's HTML page renders in headless Chromium (issue 19).

A real uvicorn serves an app with the validator on (its start-up run happens in the
lifespan); Chromium loads ``/api/security/compliance/report?format=html`` with the
admin key, the page's own CSP must let its style through (no violation), and a
screenshot, read back with Tesseract OCR, must show the framework's name and score.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.compliance._app import ADMIN_KEY, build
from tests.conftest import require_program

from ._cdp import open_page
from ._local import chromium_devtools, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def devtools(chromium: str, tmp_path: Path) -> Iterator[int]:
    """A headless Chromium that resolves nothing but 127.0.0.1; its DevTools port."""
    with chromium_devtools(chromium, tmp_path / "profile") as port:
        yield port


@pytest.mark.anyio
async def test_html_report_renders_with_name_and_score(devtools: int, tmp_path: Path) -> None:
    tesseract = require_program("tesseract")
    app, _stack, _validator = build(tmp_path)
    with serve(app) as base:
        url = f"{base}/api/security/compliance/report?framework=pci-dss&format=html"
        async with httpx.AsyncClient(headers={"X-API-Key": ADMIN_KEY}, timeout=60) as http:
            expected = (await http.get(url.replace("format=html", "format=json"))).json()
        async with open_page(devtools) as page:
            await page.call("Network.setExtraHTTPHeaders", headers={"X-API-Key": ADMIN_KEY})
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1100, height=700, deviceScaleFactor=2, mobile=False,
            )  # fmt: skip
            await page.goto(url)
            assert await page.csp_violations() == [], page.log_lines()
            title = await page.evaluate("document.querySelector('h1').textContent")
            # The style applied (its hash is in the page's CSP): the score is big and bold.
            weight = await page.evaluate(
                "getComputedStyle(document.getElementById('score')).fontWeight"
            )
            shot = await page.call("Page.captureScreenshot", format="png")
    assert title == "PCI DSS 4.0" and int(weight) >= 700
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    done = await anyio.run_process([tesseract, str(png), "stdout"], check=True)
    text = done.stdout.decode()
    flat = re.sub(r"\s+", " ", text)
    assert "PCI DSS 4.0" in flat, flat[:500]
    score = f"{expected['score']:g}%"
    assert f"Score: {score}" in flat, (score, flat[:500])
    assert "Evidence, not certification" in flat
