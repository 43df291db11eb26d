"""The compliance report's HTML page renders in headless Chromium (issue 19).

A real uvicorn serves an app with the validator on (its start-up run happens in the
lifespan); Chromium loads ``/api/security/compliance/report?format=html`` with the
admin key, the page's own CSP must let its style through (no violation), and a
screenshot, read back with Tesseract OCR, must show the framework's name and score.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn

from tests.compliance._app import ADMIN_KEY, build
from tests.conftest import require_program

from ._cdp import open_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def _serve(app: object) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def devtools(chromium: str, tmp_path: Path) -> Iterator[int]:
    """A headless Chromium that resolves nothing but 127.0.0.1; its DevTools port."""
    profile = tmp_path / "profile"
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
    ]  # fmt: skip
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield int(active.read_text().split()[0])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.anyio
async def test_html_report_renders_with_name_and_score(devtools: int, tmp_path: Path) -> None:
    tesseract = require_program("tesseract")
    app, _stack, _validator = build(tmp_path)
    with _serve(app) as base:
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
