"""A minimal Chrome DevTools Protocol client: one page, commands and events.

Just enough to drive headless Chromium from a test without chromedriver:
navigate, evaluate JavaScript, and collect the events that report a
Content-Security-Policy violation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

# Recorded in every document before its own scripts run (CDP injects it, so the
# page's CSP does not apply to it); the test reads the list back.
_VIOLATION_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(
    [e.effectiveDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(' | '));
});
"""


class CDPError(RuntimeError):
    pass


class Page:
    """One browser tab over its DevTools websocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id", -1), None)
            if future is None:
                self.events.append(message)
            elif "error" in message:
                future.set_exception(CDPError(str(message["error"])))
            else:
                future.set_result(message.get("result", {}))

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        await self._ws.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        return await asyncio.wait_for(future, 30)

    async def evaluate(
        self, expression: str, *, await_promise: bool = False, user_gesture: bool = False
    ) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
            userGesture=user_gesture,
        )
        if "exceptionDetails" in result:
            raise CDPError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll ``expression`` until it is truthy (a deadline, not a speed check)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value or loop.time() > deadline:
                return value
            await asyncio.sleep(0.2)

    async def goto(self, url: str) -> None:
        self.events.clear()
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def settle(self) -> None:
        """Wait until the page's web fonts have loaded or failed, so every font request
        (the last subresources the docs pages start) has met the CSP."""
        await self.evaluate("document.fonts.ready.then(() => true)", await_promise=True)

    async def csp_violations(self) -> list[str]:
        """Every CSP violation the page reported, whichever channel reported it."""
        await self.settle()
        found: list[str] = list(await self.evaluate("window.__cspViolations || []") or [])
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Audits.issueAdded":
                issue = params.get("issue", {})
                if issue.get("code") == "ContentSecurityPolicyIssue":
                    found.append(f"audit: {json.dumps(issue.get('details', {}))}")
            elif method == "Network.loadingFailed" and params.get("blockedReason") == "csp":
                found.append(f"blocked request: {params.get('requestId')}")
            elif method == "Log.entryAdded":
                text = params.get("entry", {}).get("text", "")
                if "Content Security Policy" in text:
                    found.append(f"log: {text}")
            elif method == "Runtime.consoleAPICalled":
                for arg in params.get("args", []):
                    if "Content Security Policy" in str(arg.get("value", "")):
                        found.append(f"console: {arg['value']}")
        return found

    def log_lines(self) -> list[str]:
        """Console and log text, to explain a failure."""
        lines = []
        for event in self.events:
            if event.get("method") == "Log.entryAdded":
                entry = event["params"]["entry"]
                lines.append(f"{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}")
            elif event.get("method") == "Runtime.exceptionThrown":
                lines.append(f"exception: {event['params']['exceptionDetails']}")
        return lines


@contextlib.asynccontextmanager
async def open_page(devtools_port: int) -> AsyncIterator[Page]:
    """Open a fresh tab with violation reporting on, and close it afterwards."""
    base = f"http://127.0.0.1:{devtools_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        target = (await http.put("/json/new?about:blank")).raise_for_status().json()
        try:
            async with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
                page = Page(ws)
                page._reader = asyncio.create_task(page._read())
                try:
                    for domain in ("Page", "Runtime", "Log", "Network", "Audits"):
                        await page.call(f"{domain}.enable")
                    await page.call(
                        "Page.addScriptToEvaluateOnNewDocument", source=_VIOLATION_LISTENER
                    )
                    yield page
                finally:
                    page._reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await page._reader
        finally:
            await http.get(f"/json/close/{target['id']}")
